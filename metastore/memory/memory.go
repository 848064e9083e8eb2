// Package memory is the in-memory metadata store, for tests: the semantics of
// every backend (versions, sessions and ephemeral nodes, sequential names,
// persistent watches), nothing persisted.
//
// A Server is one store; each NewSession is a client with its own session,
// so tests can watch one client's ephemeral nodes vanish when its session
// ends (Close) or is expired (ExpireSession).
package memory

import (
	"github.com/magnetar/magnetar/metastore/internal/core"
	"github.com/magnetar/magnetar/metastore/internal/tree"
)

// Server is an in-memory store shared by its sessions.
type Server struct {
	t *tree.Tree
}

// New returns an empty store. Of opts it uses Logger and CreateParents.
func New(opts core.Options) *Server {
	t := tree.New(tree.Config{Logger: opts.Logger, CreateParents: opts.CreateParents})
	t.Start(nil)
	return &Server{t: t}
}

// NewSession returns a client with a new session.
func (s *Server) NewSession() (core.Store, error) {
	return s.t.NewSession()
}

// ExpireSession expires session id: its ephemeral nodes are deleted, its
// store is told (SessionExpired) and carries on in a new session
// (SessionConnected).
func (s *Server) ExpireSession(id int64) error {
	return s.t.ExpireSession(id)
}

// Close ends every session; later calls fail with ErrClosed.
func (s *Server) Close() error {
	return s.t.Close()
}
