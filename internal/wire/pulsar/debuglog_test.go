package pulsar

import (
	"flag"
	"os"

	plog "github.com/apache/pulsar-client-go/pulsar/log"
	"github.com/sirupsen/logrus"
)

var clientLog = flag.Bool("clientlog", false, "show the official client's debug log in TestOfficialClientAgainstCodec")

func testLogger() plog.Logger {
	if !*clientLog {
		return plog.DefaultNopLogger()
	}
	l := logrus.New()
	l.SetOutput(os.Stderr)
	l.SetLevel(logrus.DebugLevel)
	return plog.NewLoggerWithLogrus(l)
}
