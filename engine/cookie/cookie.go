// Package cookie guards a bookie against starting on the wrong storage, as
// BookKeeper's cookies do. A cookie names a bookie (its id), the cluster
// (the metadata store's instance id) and the bookie's journal and ledger
// directories. Each of those directories holds a copy in a file named
// VERSION, and the metadata store holds one at <root>/cookies/<bookieId>.
//
// Check runs before the bookie opens its storage and refuses to start when
// the copies disagree with each other or with the configuration: a
// directory without a cookie while the metadata store has one is a new or
// wiped disk (the entries it held are gone, and a bookie that served from
// it would answer "no such entry" for acknowledged entries); a directory
// whose cookie names another bookie or cluster is mounted in the wrong
// place; a changed directory list or address is a configuration change that
// would lose the bookie's data or identity.
//
// # Format
//
// A cookie is text, the same bytes in the files and in the metadata store:
//
//	magnetar-cookie 1
//	bookieId: 127.0.0.1:3181
//	instanceId: 3f2a...
//	journalDir: data/bookkeeper/journal
//	ledgerDir: data/bookkeeper/ledgers
//
// one journalDir and ledgerDir line per directory, in configuration order
// (the journal's checkpoint names journal directories by position). The
// first line is the format's name and version.
package cookie

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"path"
	"path/filepath"
	"slices"
	"strings"

	"github.com/magnetar/magnetar/internal/vfs"
	"github.com/magnetar/magnetar/metastore"
)

// FileName is the cookie's file in each of the bookie's directories.
const FileName = "VERSION"

// header is the first line of an encoded cookie (format name and version).
const header = "magnetar-cookie 1"

// ErrMismatch is wrapped by Check's errors when the bookie must not start.
var ErrMismatch = errors.New("cookie: the bookie's storage does not match its cookie")

// Cookie identifies a bookie's storage.
type Cookie struct {
	BookieID    string
	InstanceID  string
	JournalDirs []string
	LedgerDirs  []string
}

// Encode returns the cookie's text form (see the package comment).
func (c Cookie) Encode() []byte {
	var b bytes.Buffer
	b.WriteString(header + "\n")
	fmt.Fprintf(&b, "bookieId: %s\n", c.BookieID)
	fmt.Fprintf(&b, "instanceId: %s\n", c.InstanceID)
	for _, d := range c.JournalDirs {
		fmt.Fprintf(&b, "journalDir: %s\n", d)
	}
	for _, d := range c.LedgerDirs {
		fmt.Fprintf(&b, "ledgerDir: %s\n", d)
	}
	return b.Bytes()
}

// Decode parses a cookie's text form.
func Decode(data []byte) (Cookie, error) {
	var c Cookie
	sc := bufio.NewScanner(bytes.NewReader(data))
	if !sc.Scan() || sc.Text() != header {
		return c, fmt.Errorf("cookie: not a cookie (want first line %q)", header)
	}
	for n := 2; sc.Scan(); n++ {
		key, value, ok := strings.Cut(sc.Text(), ": ")
		if !ok {
			return c, fmt.Errorf("cookie: line %d: want \"key: value\", got %q", n, sc.Text())
		}
		switch key {
		case "bookieId":
			c.BookieID = value
		case "instanceId":
			c.InstanceID = value
		case "journalDir":
			c.JournalDirs = append(c.JournalDirs, value)
		case "ledgerDir":
			c.LedgerDirs = append(c.LedgerDirs, value)
		default:
			return c, fmt.Errorf("cookie: line %d: unknown key %q", n, key)
		}
	}
	if c.BookieID == "" || c.InstanceID == "" || len(c.JournalDirs) == 0 || len(c.LedgerDirs) == 0 {
		return c, errors.New("cookie: incomplete (bookieId, instanceId, journalDir and ledgerDir are required)")
	}
	return c, nil
}

// diff describes how c differs from want, or returns "" when they match.
func (c Cookie) diff(want Cookie) string {
	var d []string
	if c.BookieID != want.BookieID {
		d = append(d, fmt.Sprintf("bookie id %q, not %q", c.BookieID, want.BookieID))
	}
	if c.InstanceID != want.InstanceID {
		d = append(d, fmt.Sprintf("cluster instance id %q, not %q (another metadata store's)", c.InstanceID, want.InstanceID))
	}
	if !slices.Equal(c.JournalDirs, want.JournalDirs) {
		d = append(d, fmt.Sprintf("journal directories %q, not %q", c.JournalDirs, want.JournalDirs))
	}
	if !slices.Equal(c.LedgerDirs, want.LedgerDirs) {
		d = append(d, fmt.Sprintf("ledger directories %q, not %q", c.LedgerDirs, want.LedgerDirs))
	}
	return strings.Join(d, "; ")
}

// Params is what Check needs.
type Params struct {
	FS    vfs.FS
	Store metastore.Store
	// Root is the ledgers root in the metadata store ("/ledgers").
	Root        string
	BookieID    string
	JournalDirs []string
	LedgerDirs  []string
	Logger      *slog.Logger
}

// Path is the metadata store node of bookie id's cookie under root.
func Path(root, bookieID string) string { return path.Join(root, "cookies", bookieID) }

// InstanceIDPath is the node holding the cluster's instance id under root.
func InstanceIDPath(root string) string { return path.Join(root, "INSTANCEID") }

// Check verifies the bookie's cookies before its storage is opened, and
// stamps a bookie that has none yet: the cookie goes into every directory
// (created when missing) and then into the metadata store. It also creates
// the cluster's instance id when the metadata store has none. It returns
// an error wrapping ErrMismatch, naming what differs, when the bookie must
// not start.
//
// A directory cookie without the metadata store's copy is accepted (and
// the copy written again) when it names this bookie, these directories and
// this cluster: that is a first start cut short between the two writes,
// or a copy an operator deleted; the instance id ties the files to this
// metadata store, so a store that was wiped and set up again does not
// match.
func Check(ctx context.Context, p Params) (Cookie, error) {
	log := p.Logger
	if log == nil {
		log = slog.Default()
	}
	inst, err := instanceID(ctx, p.Store, p.Root)
	if err != nil {
		return Cookie{}, err
	}
	want := Cookie{BookieID: p.BookieID, InstanceID: inst, JournalDirs: cleanAll(p.JournalDirs), LedgerDirs: cleanAll(p.LedgerDirs)}
	dirs := append(slices.Clone(want.JournalDirs), want.LedgerDirs...)

	stored, found, err := Read(ctx, p.Store, p.Root, p.BookieID)
	if err != nil {
		return want, err
	}
	if found {
		if d := stored.diff(want); d != "" {
			return want, fmt.Errorf("%w: the metadata store's cookie for bookie %s (%s) has %s. Restore the configuration it was created with; a bookie whose address or directories change must be decommissioned and added as a new one",
				ErrMismatch, p.BookieID, Path(p.Root, p.BookieID), d)
		}
	}
	var missing []string
	var hasData []string
	for _, dir := range dirs {
		c, ok, err := readFile(p.FS, dir)
		if err != nil {
			return want, err
		}
		if !ok {
			missing = append(missing, dir)
			if held, err := holdsData(p.FS, dir); err != nil {
				return want, err
			} else if held {
				hasData = append(hasData, dir)
			}
			continue
		}
		if d := c.diff(want); d != "" {
			return want, fmt.Errorf("%w: the cookie in %s has %s. Is a disk mounted in the wrong place, or did the bookie's address or directories change? A bookie whose address or directories change must be decommissioned and added as a new one",
				ErrMismatch, filepath.Join(dir, FileName), d)
		}
	}
	if found && len(missing) > 0 {
		return want, fmt.Errorf("%w: directories %q have no cookie, but bookie %s has one in the metadata store: they are new or were wiped, and the entries they held are gone. If a disk was replaced on purpose, decommission the bookie's data first (re-replicate its ledgers), then delete its cookie (magnetar bookie or standalone --delete-cookie) and start it again",
			ErrMismatch, missing, p.BookieID)
	}
	if len(missing) == 0 && found {
		return want, nil
	}
	// A new bookie, or one whose first start was cut short.
	if len(missing) == len(dirs) && len(hasData) > 0 {
		log.Warn("stamping cookies on directories that already hold data (written before cookies existed)", "dirs", hasData)
	}
	for _, dir := range missing {
		if err := p.FS.MkdirAll(dir, 0o755); err != nil {
			return want, fmt.Errorf("cookie: create %s: %w", dir, err)
		}
		if err := vfs.WriteFileAtomic(p.FS, filepath.Join(dir, FileName), want.Encode()); err != nil {
			return want, fmt.Errorf("cookie: write: %w", err)
		}
	}
	if !found {
		if _, err := p.Store.Create(ctx, Path(p.Root, p.BookieID), want.Encode(), metastore.CreateParents); err != nil {
			return want, fmt.Errorf("cookie: create %s: %w", Path(p.Root, p.BookieID), err)
		}
		log.Info("bookie cookie created", "bookie", p.BookieID, "instance", inst)
	}
	return want, nil
}

// Read returns bookie id's cookie from the metadata store; found is false
// when it has none.
func Read(ctx context.Context, store metastore.Store, root, bookieID string) (c Cookie, found bool, err error) {
	data, _, err := store.Get(ctx, Path(root, bookieID))
	if errors.Is(err, metastore.ErrNotFound) {
		return c, false, nil
	}
	if err != nil {
		return c, false, fmt.Errorf("cookie: read %s: %w", Path(root, bookieID), err)
	}
	if c, err = Decode(data); err != nil {
		return c, false, fmt.Errorf("%s: %w", Path(root, bookieID), err)
	}
	return c, true, nil
}

// Delete removes bookie id's cookie from the metadata store and from dirs
// (missing copies are no error). The bookie's next start stamps new ones;
// it is how an operator accepts storage that Check refused.
// The directories are locked meanwhile: it fails with an error wrapping
// vfs.ErrLocked while the bookie runs.
func Delete(ctx context.Context, fs vfs.FS, store metastore.Store, root, bookieID string, dirs []string) error {
	dirs = cleanAll(dirs)
	for _, dir := range dirs {
		lock, err := vfs.LockDir(fs, dir)
		if vfs.IsNotExist(err) {
			continue
		}
		if err != nil {
			return fmt.Errorf("cookie: %w", err)
		}
		defer lock.Close()
	}
	for _, dir := range dirs {
		name := filepath.Join(dir, FileName)
		if err := fs.Remove(name); err != nil && !vfs.IsNotExist(err) {
			return fmt.Errorf("cookie: remove %s: %w", name, err)
		}
		if err := fs.SyncDir(dir); err != nil && !vfs.IsNotExist(err) {
			return fmt.Errorf("cookie: sync %s: %w", dir, err)
		}
	}
	err := store.Delete(ctx, Path(root, bookieID), metastore.AnyVersion)
	if err != nil && !errors.Is(err, metastore.ErrNotFound) {
		return fmt.Errorf("cookie: delete %s: %w", Path(root, bookieID), err)
	}
	return nil
}

// readFile reads dir's cookie; ok is false when dir or the file is missing.
func readFile(fs vfs.FS, dir string) (Cookie, bool, error) {
	name := filepath.Join(dir, FileName)
	f, err := fs.Open(name)
	if vfs.IsNotExist(err) {
		return Cookie{}, false, nil
	}
	if err != nil {
		return Cookie{}, false, fmt.Errorf("cookie: open %s: %w", name, err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return Cookie{}, false, fmt.Errorf("cookie: stat %s: %w", name, err)
	}
	if st.Size() > metastore.MaxDataSize {
		return Cookie{}, false, fmt.Errorf("cookie: %s: %d bytes, too large for a cookie", name, st.Size())
	}
	data := make([]byte, st.Size())
	if _, err := f.ReadAt(data, 0); err != nil {
		return Cookie{}, false, fmt.Errorf("cookie: read %s: %w", name, err)
	}
	c, err := Decode(data)
	if err != nil {
		return Cookie{}, false, fmt.Errorf("%s: %w", name, err)
	}
	return c, true, nil
}

// holdsData reports whether dir has entries other than the cookie and the
// directory lock (a missing dir holds none).
func holdsData(fs vfs.FS, dir string) (bool, error) {
	names, err := fs.List(dir)
	if vfs.IsNotExist(err) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("cookie: list %s: %w", dir, err)
	}
	for _, n := range names {
		if n != FileName && n != FileName+".tmp" && n != vfs.LockName {
			return true, nil
		}
	}
	return false, nil
}

// instanceID returns the cluster's instance id, creating a random one when
// the metadata store has none (the first bookie of a new cluster).
func instanceID(ctx context.Context, store metastore.Store, root string) (string, error) {
	p := InstanceIDPath(root)
	for range 2 {
		data, _, err := store.Get(ctx, p)
		if err == nil {
			if len(data) == 0 {
				return "", fmt.Errorf("cookie: %s is empty", p)
			}
			return string(data), nil
		}
		if !errors.Is(err, metastore.ErrNotFound) {
			return "", fmt.Errorf("cookie: read %s: %w", p, err)
		}
		var b [16]byte
		_, _ = rand.Read(b[:])
		_, err = store.Create(ctx, p, []byte(hex.EncodeToString(b[:])), metastore.CreateParents)
		if err != nil && !errors.Is(err, metastore.ErrNodeExists) {
			return "", fmt.Errorf("cookie: create %s: %w", p, err)
		}
	}
	return "", fmt.Errorf("cookie: %s vanished while being created", p)
}

func cleanAll(dirs []string) []string {
	out := make([]string, len(dirs))
	for i, d := range dirs {
		out[i] = filepath.Clean(d)
	}
	return out
}
