// Package metastore is Magnetar's metadata store: the one interface through
// which bookies, ledgers, managed ledgers and brokers keep coordination state
// (Pulsar's metadata store and configuration store), with three backends
// behind it that behave the same way, held to it by one conformance suite
// (package metastoretest):
//
//   - zk:host:port[,host:port...][/chroot] (also zk://...): ZooKeeper, for
//     clusters (package zk).
//   - embedded:<dir>: an in-process tree persisted crash-safely in dir, the
//     default of `magnetar standalone` (package embedded).
//   - memory: or memory:<name>: in memory, for tests (package memory).
//
// Open picks the backend from the URL. The configuration store
// (configurationMetadataStoreUrl: tenants, namespaces, policies) is opened
// the same way; it defaults to the metadata store's URL and may point
// elsewhere. With Options.Registry, two Opens of the same memory or embedded
// URL in one process share one server, each with its own session.
//
// # Data model
//
// A tree of nodes named by slash-separated absolute paths (ZooKeeper's rules,
// see ValidatePath's errors: ErrInvalidPath). Every node has data (at most
// MaxDataSize bytes) and a Stat. Version counts data changes; Put and Delete
// take an expected version (AnyVersion, -1, matches any), which makes them
// compare-and-set: exactly one of several writers that read version v and
// write with v succeeds, the others get ErrBadVersion. Put with AnyVersion
// creates the node if missing. Create fails with ErrNotFound when the parent
// is missing unless the CreateParents flag (or Options.CreateParents) asks
// for missing ancestors to be created, empty and persistent, first.
// Children returns names sorted. Delete of a node with children fails with
// ErrNotEmpty.
//
// Sequential nodes get a ten-digit counter appended to their name: the
// parent's CVersion at creation, as in ZooKeeper, so concurrent creators get
// distinct names that increase in creation order.
//
// # Sessions
//
// Every Store is a client with a session (SessionID). Ephemeral nodes belong
// to the session that created them and are deleted when it ends: Close, or
// expiry. A store announces its session's life on WatchSession:
// SessionConnected (a session began: the first, or a new one after an
// expiry), SessionSuspended (connection lost; the session may live on),
// SessionReconnected (back in the same session), SessionExpired (the session
// and its ephemeral nodes are gone). After SessionExpired the store carries
// on in a new session; owners re-create what they own on the
// SessionConnected that follows. An ephemeral node is owned by this store's
// current session exactly when Stat.EphemeralOwner == SessionID().
//
// # Watches
//
// Watch(ctx, path, WatchData|WatchChildren) starts a persistent watch: it
// stays until closed (or ctx is done, or the store closes) and survives
// reconnections and session expiry, unlike ZooKeeper's one-shot watches; the
// ZooKeeper backend re-arms them. A watch coalesces: after every change at
// least one event is delivered that was produced after it, but several quick
// changes may arrive as one event, so a reader re-reads the node on each
// event. Data watches report EventCreated, EventDataChanged, EventDeleted;
// children watches EventCreated, EventChildrenChanged, EventDeleted.
//
// # Errors
//
// ErrNotFound, ErrNodeExists, ErrBadVersion, ErrNotEmpty,
// ErrNoChildrenForEphemerals, ErrInvalidPath, ErrTooLarge,
// ErrSessionExpired, ErrOutcomeUnknown, ErrUnavailable, ErrClosed,
// ErrCorruption, ErrLocked, ErrFailed, ErrBadURL; test them with errors.Is.
// ErrClosed, ErrTooLarge and ErrCorruption also match the classes of
// internal/base.
//
// # Layout
//
// Paths mirror Pulsar's and BookKeeper's ZooKeeper layout so that operators
// recognise them:
//
//	/ledgers                                   BookKeeper root (LedgersRoot)
//	  /available/<bookieId>                    ephemeral: writable bookie
//	  /available/readonly/<bookieId>           ephemeral: read-only bookie
//	  /cookies/<bookieId>                      bookie cookie
//	  /idgen/ID-<10 digits>                    ephemeral sequential: ledger id
//	  /idgen-long/HOB-<high 32 bits>/ID-<seq>  ids past 2^31 (long generator)
//	  /LAYOUT, /INSTANCEID                     layout and cluster instance id
//	  /underreplication/...                    auto-recovery
//	  /00/0000/L0001                           ledger 1's metadata (LedgerPath)
//	  /000/0000/0021/4748/L3648                ledger 2^31 (ids >= 2^31-1)
//	/managed-ledgers/<tenant>/<ns>/persistent/<topic>        managed ledger
//	/managed-ledgers/<tenant>/<ns>/persistent/<topic>/<cur>  its cursors
//	/admin/policies/<tenant>                   tenant info
//	/admin/policies/<tenant>/<ns>              namespace policies
//	/admin/clusters/<cluster>                  cluster data
//	/admin/partitioned-topics/<tenant>/<ns>/persistent/<topic>
//	/loadbalance/brokers/<host:port>           ephemeral: live broker, load report
//	/loadbalance/leader                        ephemeral: load manager leader
//	/namespace/<tenant>/<ns>/<bundle>          ephemeral: bundle ownership
//	/schemas/<tenant>/<ns>/<topic>             schemas
//
// Topic names inside paths are encoded as Pulsar encodes them
// (application/x-www-form-urlencoded, see EncodeName).
package metastore

import (
	"github.com/magnetar/magnetar/metastore/internal/core"
)

// The types of the store, defined in an internal package so that the
// backends and this package share them.
type (
	Store            = core.Store
	Stat             = core.Stat
	CreateFlags      = core.CreateFlags
	Event            = core.Event
	EventType        = core.EventType
	Watch            = core.Watch
	WatchKind        = core.WatchKind
	SessionEvent     = core.SessionEvent
	SessionEventType = core.SessionEventType
	SessionWatch     = core.SessionWatch
	Options          = core.Options
	Registry         = core.Registry
)

// AnyVersion as the expected version of Put or Delete matches any version.
const AnyVersion = core.AnyVersion

// MaxDataSize bounds a node's data on every backend.
const MaxDataSize = core.MaxDataSize

// Create flags.
const (
	Ephemeral     = core.Ephemeral
	Sequential    = core.Sequential
	CreateParents = core.CreateParents
)

// Watch kinds.
const (
	WatchData     = core.WatchData
	WatchChildren = core.WatchChildren
)

// Event types.
const (
	EventCreated         = core.EventCreated
	EventDeleted         = core.EventDeleted
	EventDataChanged     = core.EventDataChanged
	EventChildrenChanged = core.EventChildrenChanged
)

// Session event types.
const (
	SessionConnected   = core.SessionConnected
	SessionSuspended   = core.SessionSuspended
	SessionReconnected = core.SessionReconnected
	SessionExpired     = core.SessionExpired
)

// Errors; see the package comment.
var (
	ErrNotFound                = core.ErrNotFound
	ErrNodeExists              = core.ErrNodeExists
	ErrBadVersion              = core.ErrBadVersion
	ErrNotEmpty                = core.ErrNotEmpty
	ErrNoChildrenForEphemerals = core.ErrNoChildrenForEphemerals
	ErrInvalidPath             = core.ErrInvalidPath
	ErrSessionExpired          = core.ErrSessionExpired
	ErrOutcomeUnknown          = core.ErrOutcomeUnknown
	ErrUnavailable             = core.ErrUnavailable
	ErrClosed                  = core.ErrClosed
	ErrTooLarge                = core.ErrTooLarge
	ErrCorruption              = core.ErrCorruption
	ErrLocked                  = core.ErrLocked
	ErrBadURL                  = core.ErrBadURL
	ErrFailed                  = core.ErrFailed
	ErrBadOptions              = core.ErrBadOptions
)

// ValidatePath checks a path against the rules every backend applies.
func ValidatePath(path string) error { return core.ValidatePath(path, false) }

// Parent returns the parent of a valid path other than "/".
func Parent(path string) string { return core.Parent(path) }

// Join appends name to dir.
func Join(dir, name string) string { return core.Join(dir, name) }
