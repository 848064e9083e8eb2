package metastore

import (
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"sync"

	"github.com/magnetar/magnetar/metastore/embedded"
	"github.com/magnetar/magnetar/metastore/memory"
	"github.com/magnetar/magnetar/metastore/zk"
)

// Open opens a client of the store the URL names:
//
//	zk:host:port[,host:port...][/chroot]   ZooKeeper (also zk://...)
//	embedded:<dir>                         the embedded store in dir
//	memory:  memory:<name>                 an in-memory store
//
// A "metadata-store:" prefix, as Pulsar's metadataServiceUri uses it, is
// accepted and ignored. Closing the returned Store ends its session, and for
// an embedded or memory store it owns, the store itself. With
// opts.Registry, Opens of the same "embedded:<dir>" or "memory:<name>" in one
// process share one store (each with its own session); a shared embedded
// store closes with its last client, a shared memory store with the
// Registry.
func Open(url string, opts Options) (Store, error) {
	url = strings.TrimPrefix(url, "metadata-store:")
	scheme, rest, ok := strings.Cut(url, ":")
	if !ok {
		return nil, fmt.Errorf("%w: %q has no scheme (zk:, embedded:, memory:)", ErrBadURL, url)
	}
	rest = strings.TrimPrefix(rest, "//")
	switch scheme {
	case "zk":
		servers, chroot, err := zk.ParseURL(url)
		if err != nil {
			return nil, err
		}
		return zk.Open(servers, chroot, opts)
	case "embedded":
		if rest == "" {
			return nil, fmt.Errorf("%w: %q names no directory", ErrBadURL, url)
		}
		return openEmbedded(filepath.Clean(rest), opts)
	case "memory":
		return openMemory(rest, opts)
	}
	return nil, fmt.Errorf("%w: unknown scheme %q in %q (zk:, embedded:, memory:)", ErrBadURL, scheme, url)
}

// server is what the in-process backends have in common.
type server interface {
	NewSession() (Store, error)
	Close() error
}

func openEmbedded(dir string, opts Options) (Store, error) {
	open := func() (server, error) { return embedded.Open(dir, opts) }
	if opts.Registry == nil {
		return ownSession(open)
	}
	key := dir
	if abs, err := filepath.Abs(dir); err == nil {
		key = abs
	}
	return sharedSession(opts.Registry, "embedded:"+key, false, open)
}

func openMemory(name string, opts Options) (Store, error) {
	open := func() (server, error) { return memory.New(opts), nil }
	if opts.Registry == nil || name == "" {
		return ownSession(open)
	}
	return sharedSession(opts.Registry, "memory:"+name, true, open)
}

// ownSession opens a server whose only session is the returned store.
func ownSession(open func() (server, error)) (Store, error) {
	srv, err := open()
	if err != nil {
		return nil, err
	}
	s, err := srv.NewSession()
	if err != nil {
		srv.Close()
		return nil, err
	}
	return &sessionStore{Store: s, release: srv.Close}, nil
}

func sharedSession(reg *Registry, key string, keep bool, open func() (server, error)) (Store, error) {
	v, release, err := reg.Acquire(key, keep, func() (any, func() error, error) {
		srv, err := open()
		if err != nil {
			return nil, nil, err
		}
		return srv, srv.Close, nil
	})
	if err != nil {
		return nil, err
	}
	s, err := v.(server).NewSession()
	if err != nil {
		release()
		return nil, err
	}
	return &sessionStore{Store: s, release: release}, nil
}

// sessionStore is a session that releases its server when closed.
type sessionStore struct {
	Store
	once    sync.Once
	release func() error
}

func (s *sessionStore) Close() error {
	var err error
	s.once.Do(func() {
		err = errors.Join(s.Store.Close(), s.release())
	})
	return err
}

// ConfigurationStoreURL is the URL of the configuration store (tenants,
// namespaces, policies): configurationMetadataStoreUrl when set, else the
// metadata store's URL, as in Pulsar. Open both with the same
// Options.Registry so that, when they are the same in-process store, they
// share it.
func ConfigurationStoreURL(configurationURL, metadataURL string) string {
	if configurationURL != "" {
		return configurationURL
	}
	return metadataURL
}
