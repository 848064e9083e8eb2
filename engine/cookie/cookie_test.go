package cookie

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/magnetar/magnetar/internal/vfs"
	"github.com/magnetar/magnetar/metastore"
)

func openStore(t *testing.T) metastore.Store {
	t.Helper()
	s, err := metastore.Open("memory:", metastore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func params(fs vfs.FS, store metastore.Store) Params {
	return Params{
		FS: fs, Store: store, Root: "/ledgers", BookieID: "127.0.0.1:3181",
		JournalDirs: []string{"/d/journal"}, LedgerDirs: []string{"/d/ledgers1", "/d/ledgers2"},
		Logger: slog.New(slog.DiscardHandler),
	}
}

// mustRefuse checks that Check refuses with ErrMismatch and an error that
// mentions every one of words.
func mustRefuse(t *testing.T, p Params, words ...string) {
	t.Helper()
	_, err := Check(context.Background(), p)
	if !errors.Is(err, ErrMismatch) {
		t.Fatalf("Check = %v, want ErrMismatch", err)
	}
	for _, w := range words {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("error %q does not mention %q", err, w)
		}
	}
}

func TestNewBookieIsStampedAndAcceptedAgain(t *testing.T) {
	ctx := context.Background()
	fs, store := vfs.NewMem(), openStore(t)
	p := params(fs, store)
	c, err := Check(ctx, p)
	if err != nil {
		t.Fatal(err)
	}
	if c.InstanceID == "" || c.BookieID != p.BookieID {
		t.Fatalf("cookie %+v", c)
	}
	stored, found, err := Read(ctx, store, p.Root, p.BookieID)
	if err != nil || !found || stored.diff(c) != "" {
		t.Fatalf("metadata store cookie %+v, %v, %v; want %+v", stored, found, err, c)
	}
	for _, dir := range append(p.JournalDirs, p.LedgerDirs...) {
		got, ok, err := readFile(fs, dir)
		if err != nil || !ok || got.diff(c) != "" {
			t.Fatalf("%s: cookie %+v, %v, %v", dir, got, ok, err)
		}
	}
	again, err := Check(ctx, p)
	if err != nil || again.diff(c) != "" {
		t.Fatalf("second Check = %+v, %v", again, err)
	}
}

func TestRefusals(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		name   string
		damage func(t *testing.T, fs *vfs.MemFS, p *Params)
		words  []string
	}{
		{"wiped journal", func(t *testing.T, fs *vfs.MemFS, p *Params) {
			if err := fs.RemoveAll("/d/journal"); err != nil {
				t.Fatal(err)
			}
		}, []string{`"/d/journal"`, "have no cookie"}},
		{"wiped ledger directory", func(t *testing.T, fs *vfs.MemFS, p *Params) {
			if err := fs.Remove("/d/ledgers2/" + FileName); err != nil {
				t.Fatal(err)
			}
		}, []string{`"/d/ledgers2"`, "have no cookie"}},
		{"another address", func(t *testing.T, fs *vfs.MemFS, p *Params) {
			p.BookieID = "127.0.0.1:3182"
		}, []string{"/d/journal/VERSION", `bookie id "127.0.0.1:3181", not "127.0.0.1:3182"`}},
		{"a directory added", func(t *testing.T, fs *vfs.MemFS, p *Params) {
			p.LedgerDirs = append(p.LedgerDirs, "/d/ledgers3")
		}, []string{"metadata store's cookie", "ledger directories"}},
		{"journal directories swapped", func(t *testing.T, fs *vfs.MemFS, p *Params) {
			p.JournalDirs = []string{"/d/ledgers1"}
			p.LedgerDirs = []string{"/d/journal", "/d/ledgers2"}
		}, []string{"journal directories"}},
		{"another cluster's metadata store", func(t *testing.T, fs *vfs.MemFS, p *Params) {
			s, err := metastore.Open("memory:other", metastore.Options{})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { s.Close() })
			p.Store = s
		}, []string{"cluster instance id"}},
		{"a damaged cookie file", func(t *testing.T, fs *vfs.MemFS, p *Params) {
			if err := vfs.WriteFileAtomic(fs, "/d/ledgers1/"+FileName, []byte("magnetar-cookie 1\nbookieId 1\n")); err != nil {
				t.Fatal(err)
			}
		}, []string{"/d/ledgers1/VERSION", "line 2"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fs, store := vfs.NewMem(), openStore(t)
			p := params(fs, store)
			if _, err := Check(ctx, p); err != nil {
				t.Fatal(err)
			}
			tc.damage(t, fs, &p)
			_, err := Check(ctx, p)
			if err == nil {
				t.Fatal("Check accepted the broken storage")
			}
			for _, w := range tc.words {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not mention %q", err, w)
				}
			}
			if tc.name != "a damaged cookie file" && !errors.Is(err, ErrMismatch) {
				t.Errorf("error %v is not ErrMismatch", err)
			}
		})
	}
}

// failingCreate fails the creation of the metadata store's cookie, as a
// crash between the directory writes and that creation would leave it.
type failingCreate struct{ metastore.Store }

func (f failingCreate) Create(ctx context.Context, p string, data []byte, flags metastore.CreateFlags) (string, error) {
	if strings.Contains(p, "/cookies/") {
		return "", errors.New("injected: metadata store unreachable")
	}
	return f.Store.Create(ctx, p, data, flags)
}

func TestFirstStartCutShortIsFinished(t *testing.T) {
	ctx := context.Background()
	fs, store := vfs.NewMem(), openStore(t)
	p := params(fs, store)
	p.Store = failingCreate{store}
	if _, err := Check(ctx, p); err == nil {
		t.Fatal("Check succeeded without the metadata store's cookie")
	}
	if _, found, _ := Read(ctx, store, p.Root, p.BookieID); found {
		t.Fatal("the failed creation left a cookie")
	}
	p.Store = store
	if _, err := Check(ctx, p); err != nil {
		t.Fatalf("Check after a first start cut short: %v", err)
	}
	if _, found, err := Read(ctx, store, p.Root, p.BookieID); !found || err != nil {
		t.Fatalf("metadata store cookie not written again: %v", err)
	}
}

func TestExistingDataIsStamped(t *testing.T) {
	ctx := context.Background()
	fs, store := vfs.NewMem(), openStore(t)
	p := params(fs, store)
	if err := fs.MkdirAll("/d/ledgers1", 0o755); err != nil {
		t.Fatal(err)
	}
	if err := vfs.WriteFileAtomic(fs, "/d/ledgers1/0000000001.log", []byte("entries")); err != nil {
		t.Fatal(err)
	}
	if _, err := Check(ctx, p); err != nil {
		t.Fatalf("Check on data written before cookies: %v", err)
	}
	if _, ok, err := readFile(fs, "/d/ledgers1"); !ok || err != nil {
		t.Fatalf("no cookie stamped: %v", err)
	}
	// Once stamped, a wiped directory is refused like any other.
	if err := fs.RemoveAll("/d/journal"); err != nil {
		t.Fatal(err)
	}
	mustRefuse(t, p, "/d/journal")
}

func TestDeleteAcceptsTheNewStorage(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	store := openStore(t)
	p := params(vfs.Default, store)
	p.JournalDirs = []string{filepath.Join(dir, "journal")}
	p.LedgerDirs = []string{filepath.Join(dir, "ledgers")}
	first, err := Check(ctx, p)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.RemoveAll(p.JournalDirs[0]); err != nil {
		t.Fatal(err)
	}
	mustRefuse(t, p, p.JournalDirs[0])

	all := slices.Concat(p.JournalDirs, p.LedgerDirs)
	lock, err := vfs.LockDir(vfs.Default, p.LedgerDirs[0]) // a running bookie
	if err != nil {
		t.Fatal(err)
	}
	if err := Delete(ctx, vfs.Default, store, p.Root, p.BookieID, all); !errors.Is(err, vfs.ErrLocked) {
		t.Fatalf("Delete while the bookie runs = %v, want ErrLocked", err)
	}
	lock.Close()
	if err := Delete(ctx, vfs.Default, store, p.Root, p.BookieID, all); err != nil {
		t.Fatal(err)
	}
	again, err := Check(ctx, p)
	if err != nil {
		t.Fatalf("Check after Delete: %v", err)
	}
	if again.InstanceID != first.InstanceID {
		t.Fatalf("instance id changed: %s, then %s", first.InstanceID, again.InstanceID)
	}
}

func TestDecodeRejectsGarbage(t *testing.T) {
	good := Cookie{BookieID: "b:1", InstanceID: "i", JournalDirs: []string{"j"}, LedgerDirs: []string{"l1", "l2"}}
	got, err := Decode(good.Encode())
	if err != nil || got.diff(good) != "" {
		t.Fatalf("round trip: %+v, %v", got, err)
	}
	for _, bad := range []string{
		"",
		"magnetar-cookie 2\n",
		"magnetar-cookie 1\nbookieId: b:1\n",
		"magnetar-cookie 1\nbookieId: b:1\ninstanceId: i\njournalDir: j\nledgerDir: l\ncolour: red\n",
		"\x00\x00\x00\x00",
	} {
		if _, err := Decode([]byte(bad)); err == nil {
			t.Errorf("Decode(%q) accepted it", bad)
		}
	}
}
