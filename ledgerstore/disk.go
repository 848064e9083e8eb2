package ledgerstore

import (
	"time"

	"github.com/magnetar/magnetar/internal/vfs"
)

// CheckDisks measures every ledger directory's usage now, updates the
// store's mode (calling OnModeChange on a change) and returns it. The
// background check calls it every DiskCheckInterval.
//
// A directory is full at DiskUsageThreshold and stays full until its usage
// falls below DiskUsageLwmThreshold; a directory where a write failed with
// ENOSPC counts as full until then too. The store is read-only while every
// directory is full.
func (s *Store) CheckDisks() Mode {
	s.checkDisks()
	return s.Mode()
}

func (s *Store) checkDisks() {
	for _, d := range s.dirs {
		du, err := s.fs.DiskUsage(d.path)
		if err != nil {
			s.log.Warn("disk usage", "dir", d.path, "err", err)
			continue
		}
		u := du.UsedFraction()
		switch {
		case u >= s.opts.DiskUsageThreshold:
			if !d.full.Swap(true) {
				s.log.Warn("ledger directory full", "dir", d.path, "used", u)
			}
		case u < s.opts.DiskUsageLwmThreshold:
			wasFull := d.full.Swap(false)
			if d.noSpace.Swap(false) || wasFull {
				s.log.Info("ledger directory has space again", "dir", d.path, "used", u)
			}
		}
	}
	s.updateMode()
}

func (s *Store) diskLoop() {
	defer s.wg.Done()
	t := time.NewTicker(s.opts.DiskCheckInterval)
	defer t.Stop()
	for {
		select {
		case <-t.C:
			s.checkDisks()
		case <-s.closing:
			return
		}
	}
}

// noteWriteError marks directory d out of space when err says so.
func (s *Store) noteWriteError(d int, err error) {
	if !vfs.IsNoSpace(err) {
		return
	}
	if !s.dirs[d].noSpace.Swap(true) {
		s.log.Warn("ledger directory out of space", "dir", s.dirs[d].path, "err", err)
	}
	s.updateMode()
}

// noteCatalogError is noteWriteError for the catalog's directory.
func (s *Store) noteCatalogError(err error) {
	for i, d := range s.dirs {
		if d.path == s.cat.dir {
			s.noteWriteError(i, err)
			return
		}
	}
}
