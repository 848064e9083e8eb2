package results

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"path"
	"path/filepath"
	"reflect"
	"strings"

	"github.com/magnetar/magnetar/internal/vfs"
)

// Write encodes r as an indented JSON result file. A zero FormatVersion is
// written as the current one. NaN and infinite numbers are refused with the
// field that holds them (JSON cannot carry them, and they always mean a
// division by a zero span upstream).
func Write(w io.Writer, r *Result) error {
	b, err := Marshal(r)
	if err != nil {
		return err
	}
	_, err = w.Write(b)
	return err
}

// Marshal is Write into a byte slice.
func Marshal(r *Result) ([]byte, error) {
	if r == nil {
		return nil, fmt.Errorf("%w: nil result", ErrFormat)
	}
	out := *r
	if out.FormatVersion == 0 {
		out.FormatVersion = FormatVersion
	}
	if out.FormatVersion != FormatVersion {
		return nil, fmt.Errorf("%w: cannot write version %d (this writer writes %d)", ErrVersion, out.FormatVersion, FormatVersion)
	}
	if where := findNonFinite(reflect.ValueOf(out), "result"); where != "" {
		return nil, fmt.Errorf("%w: %s is not a finite number", ErrFormat, where)
	}
	b, err := json.MarshalIndent(&out, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("results: encode: %w", err)
	}
	return append(b, '\n'), nil
}

// Read decodes a result file. It fails with ErrVersion for a format version
// it does not know and ErrFormat for anything else it cannot read; unknown
// fields are ignored so that additive changes stay readable.
func Read(rd io.Reader) (*Result, error) {
	b, err := io.ReadAll(rd)
	if err != nil {
		return nil, fmt.Errorf("results: read: %w", err)
	}
	return Unmarshal(b)
}

// Unmarshal is Read from a byte slice.
func Unmarshal(b []byte) (*Result, error) {
	var probe struct {
		FormatVersion *int `json:"formatVersion"`
	}
	if err := json.Unmarshal(b, &probe); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrFormat, err)
	}
	if probe.FormatVersion == nil {
		return nil, fmt.Errorf("%w: no formatVersion", ErrFormat)
	}
	if v := *probe.FormatVersion; v < 1 || v > FormatVersion {
		return nil, fmt.Errorf("%w: %d (this reader knows 1 to %d)", ErrVersion, v, FormatVersion)
	}
	r := new(Result)
	dec := json.NewDecoder(bytes.NewReader(b))
	if err := dec.Decode(r); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrFormat, err)
	}
	return r, nil
}

// WriteFile writes r to name atomically through fs: a temporary file in the
// same directory, fdatasync, rename, directory sync. A reader never sees a
// half-written result file.
func WriteFile(fs vfs.FS, name string, r *Result) error {
	b, err := Marshal(r)
	if err != nil {
		return err
	}
	return writeFileAtomic(fs, name, b)
}

// ReadFile reads the result file name through fs.
func ReadFile(fs vfs.FS, name string) (*Result, error) {
	f, err := fs.Open(name)
	if err != nil {
		return nil, fmt.Errorf("results: %w", err)
	}
	defer f.Close()
	r, err := Read(f)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	return r, nil
}

// ReadFiles reads several result files, for example the repeated runs of
// one side of a comparison.
func ReadFiles(fs vfs.FS, names ...string) ([]*Result, error) {
	out := make([]*Result, 0, len(names))
	for _, n := range names {
		r, err := ReadFile(fs, n)
		if err != nil {
			return nil, err
		}
		out = append(out, r)
	}
	return out, nil
}

// writeFileAtomic writes b to name via a temporary file and a rename.
func writeFileAtomic(fs vfs.FS, name string, b []byte) (err error) {
	dir := filepath.Dir(name)
	if err := fs.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("results: mkdir %s: %w", dir, err)
	}
	tmp := name + ".tmp"
	f, err := fs.Create(tmp)
	if err != nil {
		return fmt.Errorf("results: create %s: %w", tmp, err)
	}
	defer func() {
		if err != nil {
			_ = fs.Remove(tmp)
		}
	}()
	if _, err := f.Write(b); err != nil {
		f.Close()
		return fmt.Errorf("results: write %s: %w", tmp, err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return fmt.Errorf("results: sync %s: %w", tmp, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("results: close %s: %w", tmp, err)
	}
	if err := fs.Rename(tmp, name); err != nil {
		return fmt.Errorf("results: rename %s: %w", tmp, err)
	}
	if err := fs.SyncDir(dir); err != nil {
		return fmt.Errorf("results: sync dir %s: %w", dir, err)
	}
	return nil
}

// BaseName is the file name (without extension) a run is stored under:
// scenario, UTC start time and short git revision, e.g.
// "1-topic-16-partitions-1kb-20260102T150405Z-96b545e". Characters outside
// [A-Za-z0-9._-] become '_'.
func BaseName(r *Result) string {
	parts := []string{r.Scenario}
	if r.Scenario == "" {
		parts[0] = "run"
	}
	if !r.Started.IsZero() {
		parts = append(parts, r.Started.UTC().Format("20060102T150405Z"))
	}
	if rev := r.GitRevision; rev != "" {
		if len(rev) > 12 {
			rev = rev[:12]
		}
		parts = append(parts, rev)
	}
	return sanitizeName(strings.Join(parts, "-"))
}

func sanitizeName(s string) string {
	b := []byte(s)
	for i, c := range b {
		ok := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '-'
		if !ok {
			b[i] = '_'
		}
	}
	return path.Clean(string(b))
}

// findNonFinite returns the path of the first NaN or infinite float in v, or
// "".
func findNonFinite(v reflect.Value, where string) string {
	switch v.Kind() {
	case reflect.Float32, reflect.Float64:
		if f := v.Float(); math.IsNaN(f) || math.IsInf(f, 0) {
			return where
		}
	case reflect.Struct:
		t := v.Type()
		for i := 0; i < v.NumField(); i++ {
			if !t.Field(i).IsExported() {
				continue
			}
			if w := findNonFinite(v.Field(i), where+"."+t.Field(i).Name); w != "" {
				return w
			}
		}
	case reflect.Slice, reflect.Array:
		for i := 0; i < v.Len(); i++ {
			if w := findNonFinite(v.Index(i), fmt.Sprintf("%s[%d]", where, i)); w != "" {
				return w
			}
		}
	case reflect.Pointer, reflect.Interface:
		if !v.IsNil() {
			return findNonFinite(v.Elem(), where)
		}
	case reflect.Map:
		iter := v.MapRange()
		for iter.Next() {
			if w := findNonFinite(iter.Value(), fmt.Sprintf("%s[%v]", where, iter.Key())); w != "" {
				return w
			}
		}
	}
	return ""
}
