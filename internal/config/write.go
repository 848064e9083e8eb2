package config

import (
	"bufio"
	"fmt"
	"io"
	"strings"
)

// wrapWidth is the width of comment lines in written conf files.
const wrapWidth = 100

func roleBlurb(r Role) string {
	switch r {
	case Standalone:
		return "a metadata store, a bookie and a broker in one process (magnetar standalone)"
	case Broker:
		return "a broker of a cluster (magnetar broker)"
	case Bookie:
		return "a bookie, the storage node of a cluster (magnetar bookie)"
	}
	return ""
}

// WriteDefaults writes the conf file of role with every key, its doc line
// and its default: the text shipped as conf/<role file>.
func WriteDefaults(w io.Writer, role Role) error {
	bw := bufio.NewWriter(w)
	comment(bw, "Magnetar configuration for "+roleBlurb(role)+".")
	bw.WriteString("#\n")
	comment(bw, "One key=value per line. Lines starting with # are comments; an empty value means the "+
		"key's default; a line ending in a backslash continues on the next. Keys are spelled as in Apache "+
		"Pulsar and BookKeeper, with their defaults where the concept is the same; the values below are "+
		"Magnetar's defaults for this role.")
	bw.WriteString("#\n")
	comment(bw, "Each source overrides the one before: built-in defaults, this file (or the one --conf "+
		"names), environment variables MAGNETAR_<key> (for example MAGNETAR_"+exampleKey(role)+"; the key "+
		"in upper case works too), then command-line flags (--set key=value, repeatable). An unknown key "+
		"or a bad value stops the process with the file and line at fault.")
	bw.WriteString("#\n")
	comment(bw, "This file is generated from the schema in internal/config, and a test keeps the two in "+
		"step: after changing the schema, run go test ./internal/config -run TestShippedConfFiles -update.")
	section := ""
	for _, k := range KeysOf(role) {
		if k.Section != section {
			section = k.Section
			fmt.Fprintf(bw, "\n### --- %s --- ###\n", section)
		}
		bw.WriteString("\n")
		doc := k.Doc
		if len(k.Choices) > 0 {
			doc += " One of: " + joinChoices(k.Choices) + "."
		}
		comment(bw, doc)
		fmt.Fprintf(bw, "%s=%s\n", k.Name, k.Default(role))
	}
	return bw.Flush()
}

func exampleKey(r Role) string {
	if r == Bookie {
		return "bookiePort=3182"
	}
	return "brokerServicePort=6651"
}

// WriteEffective writes c as a conf file that Load would read back to the same
// values, each value that is not a default preceded by where it came from.
func (c *Config) WriteEffective(w io.Writer) error {
	bw := bufio.NewWriter(w)
	fmt.Fprintf(bw, "# Effective configuration of magnetar %s.\n", c.Role)
	section := ""
	for _, k := range KeysOf(c.Role) {
		if k.Section != section {
			section = k.Section
			fmt.Fprintf(bw, "\n### --- %s --- ###\n", section)
		}
		if src := c.Source(k.Name); src.Kind != FromDefault {
			fmt.Fprintf(bw, "# from %s\n", src)
		}
		v, _ := c.Lookup(k.Name)
		fmt.Fprintf(bw, "%s=%s\n", k.Name, v)
	}
	return bw.Flush()
}

// comment writes text as "# "-prefixed lines wrapped at wrapWidth.
func comment(w *bufio.Writer, text string) {
	line := "#"
	for _, word := range strings.Fields(text) {
		if len(line)+1+len(word) > wrapWidth && len(line) > 1 {
			w.WriteString(line + "\n")
			line = "#"
		}
		line += " " + word
	}
	w.WriteString(line + "\n")
}
