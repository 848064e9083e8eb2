package core

import (
	"fmt"
	"strings"
	"unicode/utf8"
)

// ValidatePath checks path against ZooKeeper's rules, which every backend
// applies: absolute, slash-separated, no empty, "." or ".." elements, no
// trailing slash (except the root, or for a sequential create, whose counter
// becomes the last element), no control or reserved characters.
func ValidatePath(path string, sequential bool) error {
	bad := func(why string) error {
		return fmt.Errorf("%w: %q: %s", ErrInvalidPath, path, why)
	}
	if path == "" {
		return bad("empty")
	}
	if path[0] != '/' {
		return bad("not absolute")
	}
	if path == "/" {
		return nil
	}
	if path[len(path)-1] == '/' && !sequential {
		return bad("trailing slash")
	}
	if !utf8.ValidString(path) {
		return bad("not UTF-8")
	}
	body := path[1:]
	if sequential {
		body = strings.TrimSuffix(body, "/")
	}
	for elem := range strings.SplitSeq(body, "/") {
		switch elem {
		case "":
			return bad("empty element")
		case ".", "..":
			return bad("relative element")
		}
	}
	for _, r := range path {
		switch {
		case r == 0:
			return bad("NUL character")
		case r > 0x00 && r < 0x20, r > 0x7e && r < 0xa0,
			r > 0xd7ff && r < 0xf900, r > 0xffef && r < 0x10000:
			return bad(fmt.Sprintf("reserved character %U", r))
		}
	}
	return nil
}

// Parent returns the parent of a valid path other than "/".
func Parent(path string) string {
	i := strings.LastIndexByte(path, '/')
	if i <= 0 {
		return "/"
	}
	return path[:i]
}

// Base returns the last element of a valid path other than "/".
func Base(path string) string {
	return path[strings.LastIndexByte(path, '/')+1:]
}

// Join appends name to dir.
func Join(dir, name string) string {
	if dir == "/" {
		return "/" + name
	}
	return dir + "/" + name
}

// Ancestors returns the proper ancestors of path from the top, excluding
// "/": Ancestors("/a/b/c") is ["/a", "/a/b"].
func Ancestors(path string) []string {
	var out []string
	for i := 1; i < len(path); i++ {
		if path[i] == '/' {
			out = append(out, path[:i])
		}
	}
	return out
}

// SequentialName is the name a sequential create gives: the requested path
// followed by the ten-digit counter.
func SequentialName(path string, counter int64) string {
	return fmt.Sprintf("%s%010d", path, counter)
}

// CreateParent is the parent of the node a Create of path makes: for a
// sequential path ending in "/" the counter is the whole last element.
func CreateParent(path string, sequential bool) string {
	if sequential && strings.HasSuffix(path, "/") {
		if path == "/" {
			return "/"
		}
		return path[:len(path)-1]
	}
	return Parent(path)
}
