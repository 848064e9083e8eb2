package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"strings"

	"github.com/magnetar/magnetar/internal/config"
)

func helpCommand() *command {
	return &command{
		name:    "help",
		summary: "show the commands, or one command's flags",
		args:    "[command [subcommand]]",
		run: func(ctx context.Context, p *proc, args []string) error {
			if len(args) == 0 {
				p.cli.usage(p.Stdout)
				return nil
			}
			list := commands()
			var cmd *command
			for _, name := range args {
				cmd = findCommand(list, name)
				if cmd == nil {
					fmt.Fprintf(p.Stderr, "magnetar: help: unknown command %q\n", strings.Join(args, " "))
					return errUsage
				}
				list = cmd.subcommands
			}
			p.cli.commandHelp(p.Stdout, cmd)
			return nil
		},
	}
}

// commandHelp writes a command's synopsis, description and flags.
func (c *cli) commandHelp(w io.Writer, cmd *command) {
	synopsis := "magnetar " + cmd.path()
	if len(cmd.subcommands) > 0 {
		synopsis += " <command>"
	} else {
		fs, _ := cmd.flagSet()
		hasFlags := false
		fs.VisitAll(func(*flag.Flag) { hasFlags = true })
		if hasFlags {
			synopsis += " [flags]"
		}
	}
	if cmd.args != "" {
		synopsis += " " + cmd.args
	}
	fmt.Fprintf(w, "Usage: %s\n\n%s.\n", synopsis, capitalize(cmd.summary))
	if cmd.detail != "" {
		fmt.Fprintf(w, "\n%s\n", cmd.detail)
	}
	if cmd.pending != "" {
		fmt.Fprintf(w, "\nNot implemented yet (%s).\n", cmd.pending)
	}
	if len(cmd.subcommands) > 0 {
		fmt.Fprintf(w, "\nCommands:\n")
		for _, sub := range cmd.subcommands {
			fmt.Fprintf(w, "  %-11s %s\n", strings.TrimSpace(sub.name+" "+sub.args), sub.summary)
		}
		return
	}
	fs, _ := cmd.flagSet()
	first := true
	fs.VisitAll(func(f *flag.Flag) {
		if first {
			fmt.Fprintf(w, "\nFlags:\n")
			first = false
		}
		name, usage := flag.UnquoteUsage(f)
		if name == "value" {
			name = directFlagType(f.Name)
		}
		line := "  --" + f.Name
		if name != "" {
			line += " " + name
		}
		fmt.Fprintf(w, "%s\n%s", line, wrap(usage, "      ", 100))
	})
	if cmd.hasRole {
		fmt.Fprintf(w, "\nEvery key of conf/%s can also be set with --set key=value or the environment\n"+
			"variable MAGNETAR_<key>; flags win over the environment, which wins over the file.\n", cmd.role.ConfFile())
	}
}

func capitalize(s string) string {
	if s == "" {
		return s
	}
	return strings.ToUpper(s[:1]) + s[1:]
}

// directFlagType names the value of a direct flag by its key's type.
func directFlagType(flagName string) string {
	for _, d := range directFlags() {
		if d.flag == flagName {
			if k, ok := config.LookupKey(d.key); ok {
				return k.Type.String()
			}
		}
	}
	return "value"
}

// wrap breaks text into lines of at most width columns, each starting with
// indent.
func wrap(text, indent string, width int) string {
	var b strings.Builder
	line := indent
	for _, word := range strings.Fields(text) {
		if len(line)+1+len(word) > width && len(line) > len(indent) {
			b.WriteString(line + "\n")
			line = indent
		}
		if len(line) > len(indent) {
			line += " "
		}
		line += word
	}
	b.WriteString(line + "\n")
	return b.String()
}
