package config

import (
	"bytes"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"
)

var update = flag.Bool("update", false, "rewrite conf/*.conf from the schema")

func TestSchemaIsWellFormed(t *testing.T) {
	s, err := buildSchema(table())
	if err != nil {
		t.Fatal(err)
	}
	// Every field of every section of Config is bound by exactly one key, so
	// a field cannot be added without a key (and its doc and default).
	bound := map[string]string{}
	for _, k := range s.keys {
		path := fieldName(k.fieldIndex)
		if other, dup := bound[path]; dup {
			t.Errorf("field %s is bound by both %q and %q", path, other, k.Name)
		}
		bound[path] = k.Name
		if !strings.HasSuffix(k.Doc, ".") {
			t.Errorf("%s: doc should be a sentence ending in a period", k.Name)
		}
		if len(k.Choices) > 0 && k.Type != String {
			t.Errorf("%s: choices on a %s key", k.Name, k.Type)
		}
	}
	for _, path := range leafFields(reflect.TypeOf(Config{}), nil) {
		if _, ok := bound[fieldName(path)]; !ok {
			t.Errorf("field %s has no key", fieldName(path))
		}
	}
	// Each role has its file's keys and nothing is orphaned.
	for _, r := range Roles() {
		if len(KeysOf(r)) < 10 {
			t.Errorf("%s has only %d keys", r, len(KeysOf(r)))
		}
	}
}

func leafFields(t reflect.Type, prefix []int) [][]int {
	var out [][]int
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		if !f.IsExported() || f.Name == "Role" && len(prefix) == 0 {
			continue
		}
		path := append(slices.Clone(prefix), i)
		if f.Type.Kind() == reflect.Struct {
			out = append(out, leafFields(f.Type, path)...)
			continue
		}
		out = append(out, path)
	}
	return out
}

func fieldName(path []int) string {
	t := reflect.TypeOf(Config{})
	var names []string
	for _, i := range path {
		f := t.Field(i)
		names = append(names, f.Name)
		t = f.Type
	}
	return strings.Join(names, ".")
}

// TestShippedConfFiles keeps conf/ and the schema in step: each shipped file
// is exactly what WriteDefaults produces, parses cleanly, and holds every key
// of its role and no other.
func TestShippedConfFiles(t *testing.T) {
	for _, r := range Roles() {
		t.Run(r.String(), func(t *testing.T) {
			path := filepath.Join("..", "..", "conf", r.ConfFile())
			var want bytes.Buffer
			if err := WriteDefaults(&want, r); err != nil {
				t.Fatal(err)
			}
			if *update {
				if err := os.WriteFile(path, want.Bytes(), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			got, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, want.Bytes()) {
				t.Errorf("%s differs from the schema; run go test ./internal/config -run TestShippedConfFiles -update and review the diff", path)
			}

			settings, err := ParseFile(path, got)
			if err != nil {
				t.Fatalf("shipped file does not parse: %v", err)
			}
			inFile := map[string]bool{}
			for _, s := range settings {
				inFile[s.Key] = true
				k, ok := LookupKey(s.Key)
				switch {
				case !ok:
					t.Errorf("%s: key %q is not in the schema", s.Source, s.Key)
				case !k.In(r):
					t.Errorf("%s: key %q is not a %s key", s.Source, s.Key, r)
				case s.Value != k.Default(r):
					t.Errorf("%s: %s=%q, but its default is %q", s.Source, s.Key, s.Value, k.Default(r))
				}
			}
			for _, k := range KeysOf(r) {
				if !inFile[k.Name] {
					t.Errorf("key %q of %s is missing from %s", k.Name, r, path)
				}
			}
			for _, line := range strings.Split(string(got), "\n") {
				if len(line) > wrapWidth && strings.HasPrefix(line, "#") {
					t.Errorf("comment line longer than %d: %q", wrapWidth, line)
				}
			}

			in := Input{ConfName: path, ConfData: got}
			if r == Broker {
				// Like Pulsar's broker.conf, the shipped file leaves the
				// cluster name for the operator to fill in.
				_, err := Load(r, in)
				if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), "clusterName") {
					t.Fatalf("broker.conf without clusterName: got %v, want an error about clusterName", err)
				}
				in.Flags = []Setting{{Key: "clusterName", Value: "test", Source: Source{Kind: FromFlag, Name: "--set"}}}
			}
			c, err := Load(r, in)
			if err != nil {
				t.Fatalf("shipped file does not load: %v", err)
			}
			def := Defaults(r)
			for _, k := range KeysOf(r) {
				got, _ := c.Lookup(k.Name)
				want, _ := def.Lookup(k.Name)
				if got != want && k.Name != "clusterName" {
					t.Errorf("%s: loaded %q, default %q", k.Name, got, want)
				}
			}
		})
	}
}

func TestMisspeltKeyNamesFileAndLine(t *testing.T) {
	data := []byte("# comment\n\njournalMaxGroupWaitMsec=2\n")
	_, err := Load(Standalone, Input{ConfName: "conf/standalone.conf", ConfData: data})
	want := `conf/standalone.conf:3: unknown key "journalMaxGroupWaitMsec" (did you mean "journalMaxGroupWaitMSec"?)`
	if err == nil || err.Error() != want {
		t.Fatalf("got %v\nwant %s", err, want)
	}
	if !errors.Is(err, ErrUnknownKey) {
		t.Errorf("errors.Is(err, ErrUnknownKey) = false")
	}
	var ce *Error
	if !errors.As(err, &ce) || ce.Source.Line != 3 || ce.Source.Name != "conf/standalone.conf" || ce.Key != "journalMaxGroupWaitMsec" {
		t.Errorf("errors.As: %+v", ce)
	}
}

func TestParseFile(t *testing.T) {
	f := func(name, text string, want []Setting, wantErrs ...string) {
		t.Helper()
		got, err := ParseFile("f.conf", []byte(text))
		var msgs []string
		if err != nil {
			msgs = strings.Split(err.Error(), "\n")
		}
		if !slices.Equal(msgs, wantErrs) {
			t.Errorf("%s: errors\n got %q\nwant %q", name, msgs, wantErrs)
		}
		if len(got) != len(want) {
			t.Fatalf("%s: got %d settings %+v, want %d", name, len(got), got, len(want))
		}
		for i := range want {
			w := want[i]
			w.Source = Source{Kind: FromFile, Name: "f.conf", Line: w.Source.Line}
			if got[i] != w {
				t.Errorf("%s: setting %d = %+v, want %+v", name, i, got[i], w)
			}
		}
	}
	at := func(line int) Source { return Source{Line: line} }

	f("basics", "# c\n! also a comment\n\n  a = 1 \nb=\n\tc=x=y\n",
		[]Setting{{"a", "1", at(4)}, {"b", "", at(5)}, {"c", "x=y", at(6)}})
	f("no inline comments", "a=b # c\n", []Setting{{"a", "b # c", at(1)}})
	f("crlf and bom", "\ufeffa=1\r\nb=2\r\n", []Setting{{"a", "1", at(1)}, {"b", "2", at(2)}})
	f("continuation", "dirs=/a,\\\n    /b,\\\n  /c\nnext=1\n",
		[]Setting{{"dirs", "/a,/b,/c", at(1)}, {"next", "1", at(4)}})
	f("continuation at end of file", "a=1\\", []Setting{{"a", "1", at(1)}})
	f("comment lines do not continue", "# x\\\na=1\n", []Setting{{"a", "1", at(2)}})
	f("errors keep their lines", "a=1\nnonsense\n=3\nmy key=4\na=5\nb=6\n",
		[]Setting{{"a", "1", at(1)}, {"b", "6", at(6)}},
		`f.conf:2: expected key=value, got "nonsense"`,
		`f.conf:3: missing key before '=' in "=3"`,
		`f.conf:4: key "my key" contains spaces`,
		`f.conf:5: key "a" set twice (first at line 1)`)
}

func TestValues(t *testing.T) {
	f := func(key, raw, want string) {
		t.Helper()
		c := Defaults(Standalone)
		err := c.Set(Setting{Key: key, Value: raw, Source: Source{Kind: FromFlag, Name: "--set"}})
		if strings.HasPrefix(want, "error:") {
			if err == nil || !strings.Contains(err.Error(), strings.TrimPrefix(want, "error:")) || !errors.Is(err, ErrBadValue) {
				t.Errorf("%s=%q: got error %v, want one containing %q", key, raw, err, strings.TrimPrefix(want, "error:"))
			}
			return
		}
		if err != nil {
			t.Errorf("%s=%q: %v", key, raw, err)
			return
		}
		if got, _ := c.Lookup(key); got != want {
			t.Errorf("%s=%q: got %q, want %q", key, raw, got, want)
		}
	}
	f("brokerServicePort", "6651", "6651")
	f("brokerServicePort", "+6651", "6651")
	f("brokerServicePort", "66a", `error:flag --set: bad value for brokerServicePort: "66a" is not an integer`)
	f("brokerServicePort", "70000", "error:70000 is not a port number (0-65535)")
	f("brokerServicePort", "-1", "error:-1 is not a port number")
	f("logSizeLimit", "99999999999999999999", "error:99999999999999999999 is out of range")
	f("logSizeLimit", "4294967296", "4294967296")
	f("journalSyncData", "FALSE", "false")
	f("journalSyncData", "True", "true")
	f("journalSyncData", "yes", `error:"yes" is not true or false`)
	f("journalMaxGroupWaitMSec", "0.5", "0.5")
	f("journalMaxGroupWaitMSec", "250us", "0.25")
	f("journalMaxGroupWaitMSec", "2", "2")
	f("journalMaxGroupWaitMSec", "-1", "error:must not be negative")
	f("journalMaxGroupWaitMSec", "soon", `error:"soon" is not a number of milliseconds or a duration`)
	f("gcWaitTime", "15m", "900000")
	f("minorCompactionThreshold", "0.25", "0.25")
	f("minorCompactionThreshold", "1.5", "error:1.5 is not a fraction in (0, 1]")
	f("minorCompactionThreshold", "NaN", `error:"NaN" is not a number`)
	f("minorCompactionThreshold", "1e-1", `error:"1e-1" is not a number`)
	f("managedLedgerDigestType", "crc32c", "CRC32C")
	f("managedLedgerDigestType", "SHA1", `error:"SHA1" is not one of: CRC32C, CRC32, MAC, DUMMY`)
	f("ledgerDirectories", " /d1 , /d2,, ", "/d1,/d2")
	f("ledgerDirectories", " , ", "error:at least one directory is needed")
	f("journalAlignmentSize", "1000", "error:1000 is not a power of two of at least 512")
	f("journalAlignmentSize", "512", "512")
	f("backlogQuotaDefaultLimitBytes", "-1", "-1")
	f("backlogQuotaDefaultLimitBytes", "-2", "error:-2 must be -1 or more")
	f("advertisedAddress", "broker-1.example", "broker-1.example")
}

func TestEmptyValueMeansDefault(t *testing.T) {
	c, err := Load(Broker, Input{ConfName: "b.conf", ConfData: []byte("clusterName=c\nbrokerServicePort=\nmetadataStoreUrl=\n")})
	if err != nil {
		t.Fatal(err)
	}
	if c.Network.BrokerServicePort != 6650 || c.Metadata.MetadataStoreURL != "zk:localhost:2181" {
		t.Errorf("got port %d, store %q", c.Network.BrokerServicePort, c.Metadata.MetadataStoreURL)
	}
	if c.Source("brokerServicePort").String() != "b.conf:2" {
		t.Errorf("source = %v", c.Source("brokerServicePort"))
	}
}

func TestPrecedence(t *testing.T) {
	file := []byte("brokerServicePort=7001\nwebServicePort=7002\nbookiePort=7003\njournalSyncData=false\n")
	env := map[string]string{
		"MAGNETAR_webServicePort":          "8002", // overrides the file
		"MAGNETAR_BOOKIEPORT":              "8003", // upper case works too
		"MAGNETAR_journalSyncData":         "true",
		"MAGNETAR_prometheusStatsHttpPort": "9999", // a bookie-only key: ignored by standalone
		"MAGNETAR_LONG":                    "1",    // not a key: a warning
		"MAGNETAR_journalDirectroy":        "/x",   // not a key: a warning with a hint
		"PATH":                             "/bin", // not ours
	}
	flags := []Setting{
		{Key: "bookiePort", Value: "9003", Source: Source{Kind: FromFlag, Name: "--bookie-port"}},
		{Key: "journalSyncData", Value: "false", Source: Source{Kind: FromFlag, Name: "--set"}},
		{Key: "journalSyncData", Value: "true", Source: Source{Kind: FromFlag, Name: "--set"}}, // later flag wins
	}
	c, err := Load(Standalone, Input{ConfName: "s.conf", ConfData: file, Env: env, Flags: flags})
	if err != nil {
		t.Fatal(err)
	}
	check := func(key, want, wantSrc string) {
		t.Helper()
		if got, _ := c.Lookup(key); got != want {
			t.Errorf("%s = %s, want %s", key, got, want)
		}
		if got := c.Source(key).String(); got != wantSrc {
			t.Errorf("%s came from %s, want %s", key, got, wantSrc)
		}
	}
	check("brokerServicePort", "7001", "s.conf:1")
	check("webServicePort", "8002", "environment MAGNETAR_webServicePort")
	check("bookiePort", "9003", "flag --bookie-port")
	check("journalSyncData", "true", "flag --set")
	check("logLevel", "info", "default")
	if c.Network.PrometheusStatsHTTPPort != 8000 {
		t.Errorf("a bookie-only env key changed standalone: %d", c.Network.PrometheusStatsHTTPPort)
	}
	warnings := strings.Join(c.Warnings(), "\n")
	if !strings.Contains(warnings, "MAGNETAR_LONG: no such key; ignored") ||
		!strings.Contains(warnings, `MAGNETAR_journalDirectroy: no such key (did you mean "journalDirectory"?); ignored`) {
		t.Errorf("warnings:\n%s", warnings)
	}
}

func TestEnvErrorsNameTheVariable(t *testing.T) {
	_, err := Load(Standalone, Input{Env: map[string]string{"MAGNETAR_bookiePort": "x"}})
	if err == nil || err.Error() != `environment MAGNETAR_bookiePort: bad value for bookiePort: "x" is not an integer` {
		t.Errorf("got %v", err)
	}
	_, err = Load(Standalone, Input{Env: map[string]string{"MAGNETAR_bookiePort": "1", "MAGNETAR_BOOKIEPORT": "2"}})
	if !errors.Is(err, ErrDuplicate) || !strings.Contains(err.Error(), "MAGNETAR_BOOKIEPORT and MAGNETAR_bookiePort both set bookiePort") {
		t.Errorf("got %v", err)
	}
	// The same value under both spellings is not a conflict.
	c, err := Load(Standalone, Input{Env: map[string]string{"MAGNETAR_bookiePort": "1", "MAGNETAR_BOOKIEPORT": "1"}})
	if err != nil || c.Network.BookiePort != 1 {
		t.Errorf("got %v, %v", c, err)
	}
	// Mixed case is neither spelling.
	c, err = Load(Standalone, Input{Env: map[string]string{"MAGNETAR_BookiePort": "1"}})
	if err != nil || c.Network.BookiePort != 3181 || len(c.Warnings()) != 1 {
		t.Errorf("got %v, %v, warnings %q", c.Network.BookiePort, err, c.Warnings())
	}
}

func TestWrongRoleAndForeignNames(t *testing.T) {
	_, err := Load(Broker, Input{ConfName: "broker.conf", ConfData: []byte("clusterName=c\nbookiePort=3181\n")})
	want := `broker.conf:2: key "bookiePort" is not a broker setting (it belongs in standalone.conf, bookkeeper.conf)`
	if err == nil || err.Error() != want || !errors.Is(err, ErrWrongRole) {
		t.Errorf("got %v\nwant %s", err, want)
	}
	_, err = Load(Bookie, Input{ConfName: "bk.conf", ConfData: []byte("zkServers=localhost:2181\nenableStatistics=true\n")})
	wantLines := []string{
		`bk.conf:1: unknown key "zkServers" (Magnetar calls it "metadataServiceUri")`,
		`bk.conf:2: unknown key "enableStatistics" (Magnetar calls it "metricsEnabled")`,
	}
	if err == nil || err.Error() != strings.Join(wantLines, "\n") {
		t.Errorf("got %v", err)
	}
	_, err = Load(Bookie, Input{Flags: []Setting{{Key: "completelyUnrelated", Value: "1", Source: Source{Kind: FromFlag, Name: "--set"}}}})
	if err == nil || err.Error() != `flag --set: unknown key "completelyUnrelated"` {
		t.Errorf("got %v", err)
	}
}

func TestEveryProblemIsReported(t *testing.T) {
	data := []byte("clusterName=c\nbrokerServicePort=x\nwebServicePort=99999\nnope\n")
	_, err := Load(Broker, Input{ConfName: "b.conf", ConfData: data})
	if err == nil {
		t.Fatal("no error")
	}
	for _, want := range []string{"b.conf:2: bad value for brokerServicePort", "b.conf:3: bad value for webServicePort", "b.conf:4: expected key=value"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q:\n%v", want, err)
		}
	}
}

func TestValidate(t *testing.T) {
	f := func(role Role, file string, want string) {
		t.Helper()
		_, err := Load(role, Input{ConfName: "x.conf", ConfData: []byte(file)})
		if err == nil || !strings.Contains(err.Error(), want) || !errors.Is(err, ErrInvalid) {
			t.Errorf("%q: got %v, want an error containing %q", file, err, want)
		}
	}
	f(Broker, "clusterName=c\nmanagedLedgerDefaultAckQuorum=3\n",
		"x.conf:2: managedLedgerDefaultAckQuorum=3 exceeds managedLedgerDefaultWriteQuorum=2 (default)")
	f(Broker, "clusterName=c\nmanagedLedgerDefaultEnsembleSize=3\nmanagedLedgerDefaultWriteQuorum=4\n",
		"x.conf:3: managedLedgerDefaultWriteQuorum=4 exceeds managedLedgerDefaultEnsembleSize=3 (x.conf:2)")
	f(Broker, "webServicePort=6650\nclusterName=c\n",
		"x.conf:1: webServicePort=6650 is the port of brokerServicePort=6650 (default) too")
	f(Broker, "", "clusterName is empty: a broker must name its cluster")
	f(Bookie, "diskUsageLwmThreshold=0.97\n", "x.conf:1: diskUsageLwmThreshold=0.97 exceeds diskUsageThreshold=0.95 (default)")
	f(Bookie, "journalPreAllocSizeMB=64\njournalMaxSizeMB=32\n", "x.conf:1: journalPreAllocSizeMB=64 exceeds journalMaxSizeMB=32 (x.conf:2)")
	f(Standalone, "maxMessageSize=6000000\n", "nettyMaxFrameSizeBytes=5253120 cannot carry a message of maxMessageSize=6000000 (x.conf:1)")

	// Port 0 (pick a free port) may repeat.
	if _, err := Load(Standalone, Input{ConfData: []byte("brokerServicePort=0\nwebServicePort=0\nbookiePort=0\n")}); err != nil {
		t.Errorf("ports 0: %v", err)
	}
}

func TestWriteEffectiveRoundTrips(t *testing.T) {
	c, err := Load(Standalone, Input{
		ConfName: "s.conf",
		ConfData: []byte("journalMaxGroupWaitMSec=0.25\nledgerDirectories=/a,/b\nminorCompactionThreshold=0.3\n"),
		Env:      map[string]string{"MAGNETAR_logFormat": "json"},
	})
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := c.WriteEffective(&buf); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(buf.String(), "# from s.conf:2\nledgerDirectories=/a,/b\n") ||
		!strings.Contains(buf.String(), "# from environment MAGNETAR_logFormat\nlogFormat=json\n") {
		t.Errorf("sources missing:\n%s", buf.String())
	}
	back, err := Load(Standalone, Input{ConfName: "effective", ConfData: buf.Bytes()})
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(back.Bookie, c.Bookie) || !reflect.DeepEqual(back.Telemetry, c.Telemetry) || !reflect.DeepEqual(back.Broker, c.Broker) {
		t.Errorf("round trip changed values")
	}
	if back.Bookie.JournalMaxGroupWait != 250*time.Microsecond {
		t.Errorf("group wait = %v", back.Bookie.JournalMaxGroupWait)
	}
}

func TestDerivedValues(t *testing.T) {
	c := Defaults(Standalone)
	if got := c.Metadata.ConfigurationStoreURL(); got != "embedded:data/metadata" {
		t.Errorf("configuration store = %q", got)
	}
	c.Metadata.ConfigurationMetadataStoreURL = "zk:other:2181"
	if got := c.Metadata.ConfigurationStoreURL(); got != "zk:other:2181" {
		t.Errorf("configuration store = %q", got)
	}
	if got := c.Bookie.JournalDirs(); !slices.Equal(got, []string{"data/bookkeeper/journal"}) {
		t.Errorf("journal dirs = %q", got)
	}
	c.Bookie.JournalDirectories = []string{"/j1", "/j2"}
	if got := c.Bookie.JournalDirs(); !slices.Equal(got, []string{"/j1", "/j2"}) {
		t.Errorf("journal dirs = %q", got)
	}
	if Defaults(Bookie).HTTPPort() != 8000 || Defaults(Broker).HTTPPort() != 8080 {
		t.Errorf("HTTP ports")
	}
	if Defaults(Standalone).ManagedLedger.EnsembleSize != 1 || Defaults(Broker).ManagedLedger.EnsembleSize != 2 {
		t.Errorf("per-role defaults")
	}
}

func TestSuggestion(t *testing.T) {
	f := func(name string, role Role, want string) {
		t.Helper()
		if got := suggestion(name, role); got != want {
			t.Errorf("suggestion(%q) = %q, want %q", name, got, want)
		}
	}
	f("brokerServicePrt", Broker, ` (did you mean "brokerServicePort"?)`)
	f("BROKERSERVICEPORT", Broker, ` (did you mean "brokerServicePort"?)`)
	f("dbStorage_writeCacheMaxSizeMB", Bookie, ` (did you mean "dbStorage_writeCacheMaxSizeMb"?)`)
	f("entryLogSizeLimit", Bookie, ` (Magnetar calls it "logSizeLimit")`)
	f("zkServers", Broker, ` (Magnetar calls it "metadataStoreUrl")`)
	f("isThrottleByBytes", Bookie, ` (Magnetar throttles compaction by bytes only: set "compactionRateByBytes")`)
	f("xyz", Broker, "")
	f("somethingElseEntirely", Broker, "")
}

func TestEditDistance(t *testing.T) {
	for _, c := range []struct {
		a, b string
		d    int
	}{{"", "", 0}, {"a", "", 1}, {"kitten", "sitting", 3}, {"flaw", "lawn", 2}, {"same", "same", 0}} {
		if got := editDistance(c.a, c.b); got != c.d {
			t.Errorf("editDistance(%q, %q) = %d, want %d", c.a, c.b, got, c.d)
		}
	}
}

func TestBookieMetadataStore(t *testing.T) {
	f := func(uri, wantURL, wantRoot, wantErr string) {
		t.Helper()
		url, root, err := MetadataConfig{MetadataServiceURI: uri}.BookieMetadataStore()
		if wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), wantErr) {
				t.Errorf("%q: got %v, want error %q", uri, err, wantErr)
			}
			return
		}
		if err != nil || url != wantURL || root != wantRoot {
			t.Errorf("%q: got %q %q %v, want %q %q", uri, url, root, err, wantURL, wantRoot)
		}
	}
	f("zk+hierarchical://localhost:2181/ledgers", "zk:localhost:2181", "/ledgers", "")
	f("zk+hierarchical://zk1:2181;zk2:2181;zk3:2181/ledgers", "zk:zk1:2181,zk2:2181,zk3:2181", "/ledgers", "")
	f("zk://zk1:2181/my/ledgers/", "zk:zk1:2181", "/my/ledgers", "")
	f("zk+flat://zk1:2181", "zk:zk1:2181", "/ledgers", "")
	f("zk:zk1:2181/chroot", "zk:zk1:2181/chroot", "/ledgers", "")
	f("embedded:data/metadata", "embedded:data/metadata", "/ledgers", "")
	f("memory:", "memory:", "/ledgers", "")
	f("etcd://x:2379/ledgers", "", "", `unknown scheme "etcd"`)
	f("zk+hierarchical:///ledgers", "", "", "names no ZooKeeper server")
	f("localhost:2181", "", "", "is neither")

	_, err := Load(Bookie, Input{ConfName: "bk.conf", ConfData: []byte("metadataServiceUri=localhost:2181\n")})
	if !errors.Is(err, ErrInvalid) || !strings.HasPrefix(err.Error(), "bk.conf:1: metadataServiceUri") {
		t.Errorf("bad metadataServiceUri: %v", err)
	}
}
