package config

import (
	"errors"
	"fmt"
	"strings"
)

// Errors, tested with errors.Is; every *Error wraps one of them.
var (
	// ErrSyntax: a line of a conf file, or a --set argument, is not key=value.
	ErrSyntax = errors.New("config: syntax error")
	// ErrUnknownKey: the key is not in the schema.
	ErrUnknownKey = errors.New("config: unknown key")
	// ErrWrongRole: the key exists but belongs to another role's file.
	ErrWrongRole = errors.New("config: key of another role")
	// ErrDuplicate: a file sets the same key twice.
	ErrDuplicate = errors.New("config: duplicate key")
	// ErrBadValue: the value does not parse as the key's type or is out of range.
	ErrBadValue = errors.New("config: bad value")
	// ErrInvalid: values that parse on their own do not fit together.
	ErrInvalid = errors.New("config: invalid combination")
)

// Error is a configuration problem at a known place.
type Error struct {
	Source Source // where the offending value was given
	Key    string // the key, when one is known
	Kind   error  // one of the Err sentinels
	Msg    string // what is wrong, for people
}

func (e *Error) Error() string {
	if e.Source.Kind == FromDefault {
		return e.Msg // a default is at fault: no place to name
	}
	return e.Source.String() + ": " + e.Msg
}

// Unwrap returns the sentinel, for errors.Is.
func (e *Error) Unwrap() error { return e.Kind }

// Setting is one key=value pair and where it was given.
type Setting struct {
	Key    string
	Value  string
	Source Source
}

// ParseFile reads the key=value lines of a conf file; name is used in
// messages only. It checks syntax and duplicates, not keys or values (Load
// does). Every problem is reported, joined, each as an *Error with its line.
func ParseFile(name string, data []byte) ([]Setting, error) {
	text := strings.TrimPrefix(string(data), "\ufeff")
	lines := strings.Split(text, "\n")
	var (
		out   []Setting
		errs  []error
		first = map[string]int{} // key -> line that first set it
	)
	for i := 0; i < len(lines); i++ {
		lineNo := i + 1
		line := strings.TrimSpace(strings.TrimSuffix(lines[i], "\r"))
		if line == "" || line[0] == '#' || line[0] == '!' {
			continue
		}
		// A trailing backslash joins the next physical line.
		for strings.HasSuffix(line, `\`) {
			line = strings.TrimSuffix(line, `\`)
			if i+1 >= len(lines) {
				break
			}
			i++
			line += strings.TrimSpace(strings.TrimSuffix(lines[i], "\r"))
		}
		src := Source{Kind: FromFile, Name: name, Line: lineNo}
		key, value, err := splitAssignment(line)
		if err != nil {
			errs = append(errs, &Error{Source: src, Kind: ErrSyntax, Msg: err.Error()})
			continue
		}
		if at, dup := first[key]; dup {
			errs = append(errs, &Error{Source: src, Key: key, Kind: ErrDuplicate,
				Msg: fmt.Sprintf("key %q set twice (first at line %d)", key, at)})
			continue
		}
		first[key] = lineNo
		out = append(out, Setting{Key: key, Value: value, Source: src})
	}
	return out, errors.Join(errs...)
}

// ParseAssignment splits a "key=value" command-line argument.
func ParseAssignment(s string, src Source) (Setting, error) {
	key, value, err := splitAssignment(strings.TrimSpace(s))
	if err != nil {
		return Setting{}, &Error{Source: src, Kind: ErrSyntax, Msg: err.Error()}
	}
	return Setting{Key: key, Value: value, Source: src}, nil
}

func splitAssignment(line string) (key, value string, err error) {
	k, v, ok := strings.Cut(line, "=")
	if !ok {
		return "", "", fmt.Errorf("expected key=value, got %q", line)
	}
	k = strings.TrimSpace(k)
	if k == "" {
		return "", "", fmt.Errorf("missing key before '=' in %q", line)
	}
	if strings.ContainsAny(k, " \t") {
		return "", "", fmt.Errorf("key %q contains spaces", k)
	}
	return k, strings.TrimSpace(v), nil
}
