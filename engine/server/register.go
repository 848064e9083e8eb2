package server

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"path"
	"sync"

	"github.com/magnetar/magnetar/engine"
	"github.com/magnetar/magnetar/metastore"
)

// Registration keeps a bookie's ephemeral node in the metadata store, as
// BookKeeper does: /ledgers/available/<bookieId> while writable,
// /ledgers/available/readonly/<bookieId> while read-only. It re-creates the
// node in a new session after the old one expired.
type Registration struct {
	store    metastore.Store
	root, id string
	log      *slog.Logger

	mu struct {
		sync.Mutex
		readOnly bool
		closed   bool
	}
	done chan struct{}
	wg   sync.WaitGroup
}

// Register creates the bookie's node under root (e.g. "/ledgers") and keeps
// it across session expiry until Close.
func Register(ctx context.Context, store metastore.Store, root, bookieID string, readOnly bool, log *slog.Logger) (*Registration, error) {
	if log == nil {
		log = slog.Default()
	}
	r := &Registration{store: store, root: root, id: bookieID, log: log, done: make(chan struct{})}
	r.mu.readOnly = readOnly
	// Subscribe before creating, so no expiry goes unseen.
	sw := store.WatchSession()
	if err := r.create(ctx, readOnly); err != nil {
		sw.Close()
		return nil, err
	}
	r.wg.Add(1)
	go r.watch(sw)
	return r, nil
}

func (r *Registration) path(readOnly bool) string {
	if readOnly {
		return path.Join(r.root, "available", "readonly", r.id)
	}
	return path.Join(r.root, "available", r.id)
}

func (r *Registration) create(ctx context.Context, readOnly bool) error {
	p := r.path(readOnly)
	_, err := r.store.Create(ctx, p, nil, metastore.Ephemeral|metastore.CreateParents)
	if errors.Is(err, metastore.ErrNodeExists) {
		// A node of an earlier session of ours may linger until it expires;
		// BookKeeper waits for it. Ours is replaced if it is not this
		// session's.
		_, st, gerr := r.store.Get(ctx, p)
		if gerr == nil && st.EphemeralOwner == r.store.SessionID() {
			return nil
		}
		if derr := r.store.Delete(ctx, p, metastore.AnyVersion); derr != nil && !errors.Is(derr, metastore.ErrNotFound) {
			return fmt.Errorf("server: register %s: stale node: %w", p, derr)
		}
		_, err = r.store.Create(ctx, p, nil, metastore.Ephemeral|metastore.CreateParents)
	}
	if err != nil {
		return fmt.Errorf("server: register %s: %w", p, err)
	}
	return nil
}

func (r *Registration) watch(sw *metastore.SessionWatch) {
	defer r.wg.Done()
	defer sw.Close()
	for {
		select {
		case <-r.done:
			return
		case ev, ok := <-sw.C:
			if !ok {
				return
			}
			if ev.Type != metastore.SessionConnected {
				continue
			}
			r.mu.Lock()
			ro, closed := r.mu.readOnly, r.mu.closed
			r.mu.Unlock()
			if closed {
				return
			}
			if err := r.create(context.Background(), ro); err != nil {
				r.log.Error("bookie re-registration failed", "err", err)
			} else {
				r.log.Info("bookie re-registered after session expiry", "path", r.path(ro))
			}
		}
	}
}

// SetReadOnly moves the registration between the writable and read-only
// paths.
func (r *Registration) SetReadOnly(ctx context.Context, readOnly bool) error {
	r.mu.Lock()
	if r.mu.readOnly == readOnly || r.mu.closed {
		r.mu.Unlock()
		return nil
	}
	r.mu.readOnly = readOnly
	r.mu.Unlock()
	if err := r.create(ctx, readOnly); err != nil {
		return err
	}
	err := r.store.Delete(ctx, r.path(!readOnly), metastore.AnyVersion)
	if err != nil && !errors.Is(err, metastore.ErrNotFound) {
		return fmt.Errorf("server: unregister %s: %w", r.path(!readOnly), err)
	}
	return nil
}

// Close removes the registration.
func (r *Registration) Close(ctx context.Context) error {
	r.mu.Lock()
	if r.mu.closed {
		r.mu.Unlock()
		return nil
	}
	r.mu.closed = true
	ro := r.mu.readOnly
	r.mu.Unlock()
	close(r.done)
	r.wg.Wait()
	err := r.store.Delete(ctx, r.path(ro), metastore.AnyVersion)
	if errors.Is(err, metastore.ErrNotFound) || errors.Is(err, metastore.ErrClosed) {
		err = nil
	}
	return err
}

// RegisterHTTP adds the bookie's HTTP endpoints to mux, as BookKeeper's
// HTTP service names them: /heartbeat (liveness) and /api/v1/bookie/state
// and /api/v1/bookie/info.
func RegisterHTTP(mux *http.ServeMux, eng *engine.Bookie, s *Server) {
	mux.HandleFunc("GET /heartbeat", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain")
		fmt.Fprintln(w, "OK")
	})
	mux.HandleFunc("GET /api/v1/bookie/state", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, map[string]any{
			"running":                        true,
			"readOnly":                       eng.ReadOnly(),
			"shuttingDown":                   false,
			"availableForHighPriorityWrites": true,
		})
	})
	mux.HandleFunc("GET /api/v1/bookie/info", func(w http.ResponseWriter, _ *http.Request) {
		total, free, err := eng.DiskInfo()
		if err != nil {
			w.WriteHeader(http.StatusInternalServerError)
			writeJSON(w, map[string]any{"reason": err.Error()})
			return
		}
		writeJSON(w, map[string]any{"totalSpace": total, "freeSpace": free})
	})
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(v)
}
