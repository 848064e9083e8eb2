package core

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"time"

	"github.com/magnetar/magnetar/internal/vfs"
)

// Options configure a store. The zero value means defaults; backends call
// EnsureDefaults and then Validate.
type Options struct {
	// Logger receives the store's diagnostics; nil means slog.Default().
	Logger *slog.Logger

	// SessionTimeout is how long a session outlives a lost connection
	// (ZooKeeper; Pulsar's zooKeeperSessionTimeoutMillis). Default 30s.
	SessionTimeout time.Duration
	// OperationTimeout bounds an operation whose context has no deadline,
	// retries included (Pulsar's metadataStoreOperationTimeoutSeconds).
	// Default 30s.
	OperationTimeout time.Duration
	// ConnectTimeout bounds how long opening a ZooKeeper store waits for its
	// first session. Default 30s.
	ConnectTimeout time.Duration
	// Dialer, when set, replaces net.DialTimeout for ZooKeeper connections
	// (tests use it to cut the network).
	Dialer func(network, address string, timeout time.Duration) (net.Conn, error)

	// CreateParents makes every Create, and every Put with AnyVersion that
	// creates a node, create missing ancestors (as Pulsar's metadata store
	// does). Without it only Create with the CreateParents flag does.
	CreateParents bool

	// FS is the filesystem of the embedded store; nil means vfs.Default.
	FS vfs.FS
	// SnapshotAfterBytes: the embedded store writes a snapshot and starts a
	// new log once its log grows past this size. Default 64 MiB.
	SnapshotAfterBytes int64

	// Registry, when set, lets several metastore.Open calls in one process
	// share a store: the same "memory:<name>" or "embedded:<dir>" URL opens
	// a new session on the same in-process server.
	Registry *Registry
}

// EnsureDefaults fills in zero fields.
func (o *Options) EnsureDefaults() {
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.SessionTimeout == 0 {
		o.SessionTimeout = 30 * time.Second
	}
	if o.OperationTimeout == 0 {
		o.OperationTimeout = 30 * time.Second
	}
	if o.ConnectTimeout == 0 {
		o.ConnectTimeout = 30 * time.Second
	}
	if o.FS == nil {
		o.FS = vfs.Default
	}
	if o.SnapshotAfterBytes == 0 {
		o.SnapshotAfterBytes = 64 << 20
	}
}

// ErrBadOptions is wrapped by Validate's errors.
var ErrBadOptions = errors.New("metastore: bad options")

// Validate checks the options after EnsureDefaults.
func (o *Options) Validate() error {
	switch {
	case o.SessionTimeout < 100*time.Millisecond:
		return fmt.Errorf("%w: SessionTimeout %v below 100ms", ErrBadOptions, o.SessionTimeout)
	case o.OperationTimeout <= 0:
		return fmt.Errorf("%w: OperationTimeout %v", ErrBadOptions, o.OperationTimeout)
	case o.ConnectTimeout <= 0:
		return fmt.Errorf("%w: ConnectTimeout %v", ErrBadOptions, o.ConnectTimeout)
	case o.SnapshotAfterBytes < 1<<10:
		return fmt.Errorf("%w: SnapshotAfterBytes %d below 1 KiB", ErrBadOptions, o.SnapshotAfterBytes)
	}
	return nil
}

// Registry holds in-process servers shared by several Open calls. The zero
// value is ready to use. Close it when done.
type Registry struct {
	mu      sync.Mutex
	entries map[string]*registryEntry
}

type registryEntry struct {
	value any
	refs  int
	// keep: stay open after the last release, until Registry.Close
	// (memory stores, whose data would otherwise vanish).
	keep    bool
	closeFn func() error
}

// Acquire returns the value registered under key, making it with mk when
// absent, and counts a reference. release drops the reference; the last one
// closes the value unless keep was set.
func (r *Registry) Acquire(key string, keep bool, mk func() (any, func() error, error)) (value any, release func() error, err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.entries == nil {
		r.entries = make(map[string]*registryEntry)
	}
	e := r.entries[key]
	if e == nil {
		v, closeFn, err := mk()
		if err != nil {
			return nil, nil, err
		}
		e = &registryEntry{value: v, keep: keep, closeFn: closeFn}
		r.entries[key] = e
	}
	e.refs++
	var once sync.Once
	release = func() error {
		var err error
		once.Do(func() {
			r.mu.Lock()
			e.refs--
			last := e.refs == 0 && !e.keep && r.entries[key] == e
			if last {
				delete(r.entries, key)
			}
			r.mu.Unlock()
			if last {
				err = e.closeFn()
			}
		})
		return err
	}
	return e.value, release, nil
}

// Close closes every registered value and empties the registry.
func (r *Registry) Close() error {
	r.mu.Lock()
	entries := r.entries
	r.entries = nil
	r.mu.Unlock()
	var errs []error
	for _, e := range entries {
		errs = append(errs, e.closeFn())
	}
	return errors.Join(errs...)
}
