// Command hsmgate is a self-hosted crypto REST gateway: keys live in a
// PKCS#11 token, applications use them over a TSB-compatible HTTPS API.
// `hsmgate help` lists its commands; every command answers --help.
package main

import (
	"cmp"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
)

// Build information, set with -ldflags "-X main.version=…".
var (
	version   = "dev"
	commit    = "unknown"
	buildTime = "unknown"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// defaultConfig is the configuration file of the commands that take
// --config, relative to the working directory.
const defaultConfig = "hsmgate.yaml"

// rootAbout is the introduction of `hsmgate help`.
const rootAbout = `hsmgate is a crypto REST gateway: keys live in a PKCS#11 token (SoftHSM2 in
development), applications use them over a TSB-compatible HTTPS API.

Configuration: serve, token, user and customer read ` + defaultConfig + ` in the
working directory unless --config FILE names another; dev writes and reads
DIR/config.yaml (.hsmgate/config.yaml by default). HSMGATE_* environment
variables override single values, for example HSMGATE_LISTEN, HSMGATE_HSM_URI,
HSMGATE_HSM_PIN (the token's PIN), HSMGATE_STORE_DSN and HSMGATE_LOG_LEVEL; the
README's configuration reference lists every key and variable.`

// root is the command tree of the binary.
var root = &command{name: "hsmgate", about: rootAbout, subs: []*command{
	devCommand(), serveCommand(), tokenCommand(), userCommand(), customerCommand(), actyxCommand(), auditCommand(), approverCommand(),
	{name: "version", summary: "print the version", setup: noFlags(func() error {
		fmt.Printf("hsmgate %s (commit %s, built %s)\n", version, commit, buildTime)
		return nil
	})},
}}

// command is a command of the binary: a group of sub-commands, or a leaf
// that parses its flags and runs.
type command struct {
	name    string // as typed
	args    string // the positional arguments of a leaf in its synopsis, e.g. "USERNAME"
	nargs   int    // how many positional arguments a leaf takes; -1: one or more
	summary string // one line in the group's list
	about   string // printed by --help under the synopsis
	// setup defines the flags of a leaf on fs and returns what runs with
	// the positional arguments once they are parsed. It must have no other
	// effect: usage calls it to list the flags.
	setup func(fs *flag.FlagSet) func(args []string) error
	subs  []*command
}

// noFlags is the setup of a leaf without flags or arguments.
func noFlags(run func() error) func(*flag.FlagSet) func([]string) error {
	return func(*flag.FlagSet) func([]string) error {
		return func([]string) error { return run() }
	}
}

// configFlag defines --config on fs.
func configFlag(fs *flag.FlagSet) *string {
	return fs.String("config", defaultConfig, "configuration `FILE`, relative to the working directory;\nHSMGATE_* variables override its values")
}

// usageError is a mistake on the command line: the usage goes to
// standard error and the exit status is 2.
type usageError struct {
	msg  string
	cmd  *command // filled by dispatch when the action left it nil
	path string
}

// Error returns the message printed before the usage.
func (e *usageError) Error() string { return e.msg }

// usageErrorf returns a usageError for the command being run.
func usageErrorf(format string, args ...any) error {
	return &usageError{msg: fmt.Sprintf(format, args...)}
}

// run runs the command line args and returns the exit status: 0, 1 when
// the command failed, 2 when the command line is wrong.
func run(args []string, stdout, stderr io.Writer) int {
	err := dispatch(root, root.name, args, stdout)
	var ue *usageError
	switch {
	case err == nil:
		return 0
	case errors.As(err, &ue):
		fmt.Fprintf(stderr, "hsmgate: %s\n\n", ue.msg)
		ue.cmd.usage(stderr, ue.path)
		return 2
	}
	fmt.Fprintln(stderr, "hsmgate:", err)
	return 1
}

// isHelp reports whether a word asks for help.
func isHelp(arg string) bool {
	return arg == "-h" || arg == "-help" || arg == "--help"
}

// dispatch runs args against c, named path on the command line. Help is
// printed to stdout before anything else happens: no file is read.
func dispatch(c *command, path string, args []string, stdout io.Writer) error {
	if c.subs != nil {
		switch {
		case len(args) == 0:
			return &usageError{msg: "missing command", cmd: c, path: path}
		case isHelp(args[0]):
			c.usage(stdout, path)
			return nil
		case args[0] == "help": // `help user add` is `user add --help`
			return dispatch(c, path, append(slices.Clone(args[1:]), "--help"), stdout)
		}
		for _, sub := range c.subs {
			if sub.name == args[0] {
				return dispatch(sub, path+" "+sub.name, args[1:], stdout)
			}
		}
		return &usageError{msg: fmt.Sprintf("unknown command %q", args[0]), cmd: c, path: path}
	}
	fs := flag.NewFlagSet(path, flag.ContinueOnError)
	fs.SetOutput(io.Discard) // dispatch prints the usage itself
	action := c.setup(fs)
	err := fs.Parse(args)
	if errors.Is(err, flag.ErrHelp) || err == nil && slices.ContainsFunc(fs.Args(), isHelp) {
		c.usage(stdout, path)
		return nil
	}
	switch {
	case err != nil:
	case c.nargs < 0 && fs.NArg() == 0:
		err = fmt.Errorf("no arguments, want at least one (%s)", c.args)
	case c.nargs >= 0 && fs.NArg() != c.nargs:
		err = fmt.Errorf("%d arguments, want %d (%s)", fs.NArg(), c.nargs, cmp.Or(c.args, "none"))
	}
	if err != nil {
		return &usageError{msg: err.Error(), cmd: c, path: path}
	}
	err = action(fs.Args())
	var ue *usageError
	if errors.As(err, &ue) && ue.cmd == nil {
		ue.cmd, ue.path = c, path
	}
	return err
}

// usage prints the synopsis, the description and the flags or
// sub-commands of c, named path on the command line.
func (c *command) usage(w io.Writer, path string) {
	if c.subs != nil {
		fmt.Fprintf(w, "Usage: %s COMMAND [flags] [ARGS]\n\n", path)
		if c.about != "" {
			fmt.Fprintf(w, "%s\n\n", c.about)
		}
		fmt.Fprintln(w, "Commands:")
		for _, sub := range c.subs {
			fmt.Fprintf(w, "  %-12s %s\n", sub.name, sub.summary)
		}
		fmt.Fprintf(w, "\nRun '%s COMMAND --help' for the flags and arguments of a command.\n", path)
		return
	}
	fs := flag.NewFlagSet(path, flag.ContinueOnError)
	c.setup(fs)
	synopsis := path
	if hasFlags(fs) {
		synopsis += " [flags]"
	}
	if c.args != "" {
		synopsis += " " + c.args
	}
	about := c.about
	if about == "" { // the summary as a sentence
		about = strings.ToUpper(c.summary[:1]) + c.summary[1:] + "."
	}
	fmt.Fprintf(w, "Usage: %s\n\n%s\n", synopsis, about)
	if !hasFlags(fs) {
		return
	}
	fmt.Fprintln(w, "\nFlags:")
	fs.VisitAll(func(f *flag.Flag) {
		name, text := flag.UnquoteUsage(f)
		left := "--" + f.Name
		if name != "" {
			left += " " + name
		}
		if f.DefValue != "" && f.DefValue != "false" {
			text += fmt.Sprintf(" (default %s)", f.DefValue)
		}
		fmt.Fprintf(w, "  %-22s %s\n", left, strings.ReplaceAll(text, "\n", "\n"+strings.Repeat(" ", 25)))
	})
}

// hasFlags reports whether fs defines a flag.
func hasFlags(fs *flag.FlagSet) bool {
	n := 0
	fs.VisitAll(func(*flag.Flag) { n++ })
	return n > 0
}
