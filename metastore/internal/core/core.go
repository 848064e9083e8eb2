// Package core defines the types every metadata store backend shares: the
// Store interface, Stat, errors, watches and session events. Package
// metastore re-exports all of it under its own names; backends import this
// package so that metastore can import the backends without a cycle.
package core

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/magnetar/magnetar/internal/base"
)

// AnyVersion as the expected version of Put or Delete matches any version.
const AnyVersion int64 = -1

// MaxDataSize bounds a node's value on every backend, so that code that works
// on the embedded store also works on ZooKeeper (whose default packet limit,
// jute.maxbuffer, is just under 1 MiB).
const MaxDataSize = 1000 << 10

// CreateFlags modify Create.
type CreateFlags uint8

const (
	// Ephemeral nodes belong to the creating session and are deleted when it
	// ends (Close) or expires. They cannot have children.
	Ephemeral CreateFlags = 1 << iota
	// Sequential appends a ten-digit, zero-padded counter to the last path
	// element. The counter is the parent's children version (CVersion), as in
	// ZooKeeper, so names under one parent increase in creation order.
	Sequential
	// CreateParents creates missing ancestors as empty persistent nodes first.
	CreateParents
)

// Stat describes a node.
type Stat struct {
	// Version counts changes to the node's data; 0 after Create.
	Version int64
	// CVersion counts creations and deletions of the node's children.
	CVersion int64
	// CreatedRevision and ModifiedRevision order all changes of the store
	// (ZooKeeper's czxid and mzxid): a node deleted and created again has a
	// new CreatedRevision.
	CreatedRevision  int64
	ModifiedRevision int64
	Created          time.Time // millisecond precision
	Modified         time.Time // millisecond precision
	// EphemeralOwner is the session that owns an ephemeral node, 0 for a
	// persistent one.
	EphemeralOwner int64
	NumChildren    int
	DataLength     int
}

// WatchKind says what a watch observes.
type WatchKind uint8

const (
	// WatchData observes a node's existence and data: EventCreated,
	// EventDataChanged, EventDeleted.
	WatchData WatchKind = iota + 1
	// WatchChildren observes a node's existence and its set of children:
	// EventCreated, EventChildrenChanged, EventDeleted.
	WatchChildren
)

func (k WatchKind) String() string {
	switch k {
	case WatchData:
		return "data"
	case WatchChildren:
		return "children"
	}
	return fmt.Sprintf("WatchKind(%d)", uint8(k))
}

// EventType says what changed.
type EventType uint8

const (
	EventCreated EventType = iota + 1
	EventDeleted
	EventDataChanged
	EventChildrenChanged
)

func (t EventType) String() string {
	switch t {
	case EventCreated:
		return "created"
	case EventDeleted:
		return "deleted"
	case EventDataChanged:
		return "data-changed"
	case EventChildrenChanged:
		return "children-changed"
	}
	return fmt.Sprintf("EventType(%d)", uint8(t))
}

// Event is a change seen by a watch. Path is the watched path.
type Event struct {
	Type EventType
	Path string
}

// SessionEventType is a change of a store's session.
type SessionEventType uint8

const (
	// SessionConnected: a session was established, the first one or a new
	// one after SessionExpired. Owners (re-)register their ephemeral nodes.
	SessionConnected SessionEventType = iota + 1
	// SessionSuspended: the connection was lost. The session and its
	// ephemeral nodes may still exist; an owner stops acting on what it
	// owns until SessionReconnected or SessionExpired.
	SessionSuspended
	// SessionReconnected: the connection is back within the same session;
	// nothing was lost.
	SessionReconnected
	// SessionExpired: the session ended. Its ephemeral nodes are deleted (on
	// ZooKeeper, at the latest when the server notices; see package zk).
	SessionExpired
)

func (t SessionEventType) String() string {
	switch t {
	case SessionConnected:
		return "connected"
	case SessionSuspended:
		return "suspended"
	case SessionReconnected:
		return "reconnected"
	case SessionExpired:
		return "expired"
	}
	return fmt.Sprintf("SessionEventType(%d)", uint8(t))
}

// SessionEvent reports a session change. SessionID is the session the event
// is about: the expired one for SessionExpired, the new one for
// SessionConnected.
type SessionEvent struct {
	Type      SessionEventType
	SessionID int64
}

// Store is a client of a metadata store with its own session. All methods
// are safe for concurrent use. See package metastore for the contract.
type Store interface {
	// Get returns a copy of the node's data and its Stat.
	Get(ctx context.Context, path string) ([]byte, Stat, error)
	// Exists reports whether the node exists, and its Stat if it does.
	Exists(ctx context.Context, path string) (Stat, bool, error)
	// Children returns the names (not paths) of the node's children, sorted.
	Children(ctx context.Context, path string) ([]string, error)
	// Create creates a node and returns its path (which differs from path for
	// Sequential nodes).
	Create(ctx context.Context, path string, data []byte, flags CreateFlags) (string, error)
	// Put sets the node's data if its version is expectedVersion
	// (compare-and-set), failing with ErrBadVersion otherwise and ErrNotFound
	// if it does not exist. With AnyVersion it sets the data whatever the
	// version, creating a persistent node if there is none.
	Put(ctx context.Context, path string, data []byte, expectedVersion int64) (Stat, error)
	// Delete deletes a node without children whose version is
	// expectedVersion (or any, with AnyVersion).
	Delete(ctx context.Context, path string, expectedVersion int64) error
	// Watch starts a persistent watch on path (which need not exist).
	Watch(ctx context.Context, path string, kind WatchKind) (*Watch, error)
	// WatchSession subscribes to this store's session events.
	WatchSession() *SessionWatch
	// SessionID is the current session, 0 while there is none.
	SessionID() int64
	// Close ends the session (its ephemeral nodes are deleted), ends every
	// watch and subscription, and makes later calls fail with ErrClosed.
	Close() error
}

// Errors, tested with errors.Is. Backends wrap them with the operation and
// path.
var (
	ErrNotFound                = errors.New("metastore: node not found")
	ErrNodeExists              = errors.New("metastore: node already exists")
	ErrBadVersion              = errors.New("metastore: version mismatch")
	ErrNotEmpty                = errors.New("metastore: node has children")
	ErrNoChildrenForEphemerals = errors.New("metastore: ephemeral nodes cannot have children")
	ErrInvalidPath             = errors.New("metastore: invalid path")
	// ErrSessionExpired: the operation was cut off by the end of the session
	// it ran in (its outcome follows the rules of ErrOutcomeUnknown), or an
	// ephemeral node it created belongs to a session that has expired.
	ErrSessionExpired = errors.New("metastore: session expired")
	// ErrOutcomeUnknown: the connection was lost while a write was in
	// flight and its effect could not be verified (sequential creates, see
	// package zk). The write may or may not have been applied.
	ErrOutcomeUnknown = errors.New("metastore: connection lost, outcome unknown")
	// ErrUnavailable: the store could not be reached before the deadline;
	// the operation was not applied.
	ErrUnavailable = errors.New("metastore: store unavailable")
	ErrClosed      = fmt.Errorf("metastore: %w", base.ErrClosed)
	ErrTooLarge    = fmt.Errorf("metastore: value %w", base.ErrTooLarge)
	ErrCorruption  = fmt.Errorf("metastore: %w", base.ErrCorruption)
	// ErrLocked: another process holds the embedded store's directory.
	ErrLocked = errors.New("metastore: directory locked by another process")
	// ErrBadURL: Open could not parse the store URL.
	ErrBadURL = errors.New("metastore: bad store URL")
	// ErrFailed: a write to the embedded store's log failed; the store
	// refuses every operation until it is reopened.
	ErrFailed = errors.New("metastore: store failed")
)

// OpError wraps err with the operation and path.
func OpError(op, path string, err error) error {
	return fmt.Errorf("%w (%s %s)", err, op, path)
}
