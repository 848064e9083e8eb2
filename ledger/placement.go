package ledger

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"slices"
	"sync"
	"time"

	"github.com/magnetar/magnetar/metastore"
)

// placement knows the writable bookies (the children of
// <root>/available other than "readonly", kept current by a watch) and
// chooses ensembles from them: uniformly at random, never the same bookie
// twice in an ensemble, never an excluded one (the ensemble's other
// members and bookies that failed).
type placement struct {
	store  metastore.Store
	path   string
	logger *slog.Logger

	mu struct {
		sync.Mutex
		writable []string
		rnd      *rand.Rand
	}
}

// readOnlyNode is the child of the available path under which read-only
// bookies register.
const readOnlyNode = "readonly"

func newPlacement(store metastore.Store, root string, logger *slog.Logger) *placement {
	p := &placement{store: store, path: root + "/available", logger: logger}
	seed := uint64(time.Now().UnixNano())
	p.mu.rnd = rand.New(rand.NewPCG(seed, seed>>17|1))
	return p
}

// refresh re-reads the registered bookies.
func (p *placement) refresh(ctx context.Context) error {
	names, err := p.store.Children(ctx, p.path)
	if errors.Is(err, metastore.ErrNotFound) {
		names, err = nil, nil
	}
	if err != nil {
		return fmt.Errorf("ledger: listing bookies under %s: %w", p.path, err)
	}
	names = slices.DeleteFunc(names, func(n string) bool { return n == readOnlyNode })
	p.mu.Lock()
	p.mu.writable = names
	p.mu.Unlock()
	return nil
}

// watch keeps the list current until ctx is done.
func (p *placement) watch(ctx context.Context) {
	for ctx.Err() == nil {
		w, err := p.store.Watch(ctx, p.path, metastore.WatchChildren)
		if err != nil {
			if ctx.Err() == nil {
				p.logger.Warn("ledger: cannot watch bookies; retrying", "path", p.path, "err", err)
				select {
				case <-ctx.Done():
				case <-time.After(time.Second):
				}
			}
			continue
		}
		if err := p.refresh(ctx); err != nil && ctx.Err() == nil {
			p.logger.Warn("ledger: cannot list bookies", "err", err)
		}
		for range w.C {
			if err := p.refresh(ctx); err != nil && ctx.Err() == nil {
				p.logger.Warn("ledger: cannot list bookies", "err", err)
			}
		}
		w.Close()
	}
}

// bookies returns the writable bookies known now.
func (p *placement) bookies() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return slices.Clone(p.mu.writable)
}

// choose picks n distinct bookies, none in exclude.
func (p *placement) choose(n int, exclude map[string]bool) ([]string, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	cands := make([]string, 0, len(p.mu.writable))
	for _, b := range p.mu.writable {
		if !exclude[b] {
			cands = append(cands, b)
		}
	}
	if len(cands) < n {
		return nil, fmt.Errorf("%w: need %d, have %d of %d registered (excluding %d)",
			ErrNotEnoughBookies, n, len(cands), len(p.mu.writable), len(exclude))
	}
	for i := 0; i < n; i++ {
		j := i + p.mu.rnd.IntN(len(cands)-i)
		cands[i], cands[j] = cands[j], cands[i]
	}
	return cands[:n:n], nil
}
