package embedded_test

import (
	"testing"

	"github.com/magnetar/magnetar/metastore"
	"github.com/magnetar/magnetar/metastore/embedded"
	"github.com/magnetar/magnetar/metastore/metastoretest"
)

type cluster struct{ srv *embedded.Server }

func (c *cluster) NewClient(t *testing.T) metastore.Store {
	s, err := c.srv.NewSession()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func (c *cluster) ExpireSession(t *testing.T, s metastore.Store) {
	if err := c.srv.ExpireSession(s.SessionID()); err != nil {
		t.Fatal(err)
	}
}

func TestConformance(t *testing.T) {
	metastoretest.Run(t, func(t *testing.T) metastoretest.Cluster {
		srv, err := embedded.Open(t.TempDir(), metastore.Options{})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			if err := srv.Close(); err != nil {
				t.Error(err)
			}
		})
		return &cluster{srv}
	})
}
