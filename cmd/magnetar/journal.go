package main

import (
	"context"
	"fmt"

	"github.com/magnetar/magnetar/internal/vfs"
	"github.com/magnetar/magnetar/journal"
)

func journalCommand() *command {
	j := &command{
		name:    "journal",
		summary: "inspect a bookie's journal",
	}
	j.subcommands = []*command{
		{
			name:    "dump",
			parent:  j,
			args:    "DIR",
			summary: "print the records of the journal in DIR, and how it ends",
			run: func(ctx context.Context, p *proc, args []string) error {
				if len(args) != 1 {
					fmt.Fprintln(p.Stderr, "magnetar: journal dump: want one argument, DIR")
					return errUsage
				}
				return journal.Dump(vfs.Default, args[0], p.Stdout)
			},
		},
	}
	return j
}
