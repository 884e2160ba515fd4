// Command kommo is a toolbox for Kommo Chat API integrations: it signs
// requests and explains why a signature does not verify, checks webhook
// signatures, and runs kommotest as a standalone fake Kommo (with an admin
// API and a web inbox) that tests in any language can talk to.
//
//	go install github.com/kommo-go/kommo/cmd/kommo@latest
//
// Commands: sign, verify-request, verify-webhook, fake. Run "kommo help
// COMMAND" or "kommo COMMAND --help" for each one's flags and an example.
//
// The command line uses the standard library's flag package, one FlagSet
// per command: the commands are few and flat, so a CLI library would add a
// dependency to every "go install" for no gain.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"sort"
	"strings"
	"syscall"
)

// command is one subcommand.
type command struct {
	name    string
	summary string
	usage   string // the argument synopsis after the command name
	example string
	run     func(env *env, args []string) error
}

// env is what a command reads and writes, so tests can run it in process.
type env struct {
	stdin          io.Reader
	stdout, stderr io.Writer
	getenv         func(string) string
}

// exitError ends the program with a status and no further message (the
// command has already said why).
type exitError struct{ code int }

func (e exitError) Error() string { return fmt.Sprintf("exit status %d", e.code) }

var commands = map[string]*command{}

func register(c *command) { commands[c.name] = c }

func main() {
	e := &env{stdin: os.Stdin, stdout: os.Stdout, stderr: os.Stderr, getenv: os.Getenv}
	os.Exit(run(e, os.Args[1:]))
}

// run runs the command line args and returns the exit status.
func run(e *env, args []string) int {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" && len(args) == 1 {
		usage(e.stdout)
		if len(args) == 0 {
			return 2
		}
		return 0
	}
	if args[0] == "help" {
		args = []string{args[1], "--help"}
	}
	c := commands[args[0]]
	if c == nil {
		fmt.Fprintf(e.stderr, "kommo: unknown command %q\n\n", args[0])
		usage(e.stderr)
		return 2
	}
	err := c.run(e, args[1:])
	var ee exitError
	switch {
	case err == nil:
		return 0
	case errors.Is(err, flag.ErrHelp):
		return 0
	case errors.As(err, &ee):
		return ee.code
	case errors.Is(err, errUsage):
		return 2
	}
	fmt.Fprintf(e.stderr, "kommo %s: %v\n", c.name, err)
	return 1
}

// errUsage is returned after a flag error was already printed.
var errUsage = errors.New("usage")

func usage(w io.Writer) {
	fmt.Fprint(w, "kommo: tools for Kommo Chat API integrations\n\nUsage: kommo COMMAND [flags]\n\nCommands:\n")
	names := make([]string, 0, len(commands))
	for n := range commands {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		fmt.Fprintf(w, "  %-15s %s\n", n, commands[n].summary)
	}
	fmt.Fprint(w, "\nRun \"kommo COMMAND --help\" for a command's flags and an example.\n")
}

// flags returns the FlagSet of c, printing its help (with the example) to
// e.stdout on --help and flag errors to e.stderr.
func (c *command) flags(e *env) *flag.FlagSet {
	fs := flag.NewFlagSet("kommo "+c.name, flag.ContinueOnError)
	fs.SetOutput(e.stderr)
	fs.Usage = func() {
		w := fs.Output()
		fmt.Fprintf(w, "kommo %s: %s\n\nUsage: kommo %s %s\n\nFlags:\n", c.name, c.summary, c.name, c.usage)
		fs.PrintDefaults()
		fmt.Fprintf(w, "\nExample:\n%s\n", indent(c.example, "  "))
	}
	return fs
}

// parse parses args; --help prints the usage to stdout.
func (c *command) parse(e *env, fs *flag.FlagSet, args []string) error {
	for _, a := range args {
		if a == "--" {
			break
		}
		if a == "-h" || a == "--help" || a == "-help" {
			fs.SetOutput(e.stdout)
			fs.Usage()
			return flag.ErrHelp
		}
	}
	// Flags may follow positional arguments ("talk get 1001 --json"):
	// parse, set the first positional aside, and go on.
	var positional []string
	for {
		if err := fs.Parse(args); err != nil {
			return errUsage
		}
		rest := fs.Args()
		if len(rest) == 0 {
			break
		}
		if rest[0] == "--" {
			positional = append(positional, rest[1:]...)
			break
		}
		positional = append(positional, rest[0])
		args = rest[1:]
	}
	return fs.Parse(append([]string{"--"}, positional...))
}

func indent(s, prefix string) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	for i, l := range lines {
		lines[i] = prefix + l
	}
	return strings.Join(lines, "\n")
}

// secretFrom returns the channel secret from the flag or KOMMO_CHANNEL_SECRET.
func secretFrom(e *env, flagValue string) (string, error) {
	if flagValue != "" {
		return flagValue, nil
	}
	if v := e.getenv("KOMMO_CHANNEL_SECRET"); v != "" {
		return v, nil
	}
	return "", errors.New("no channel secret: pass --secret or set KOMMO_CHANNEL_SECRET")
}

// readInput reads a file, or stdin for "-".
func readInput(e *env, name string) ([]byte, error) {
	if name == "-" {
		return io.ReadAll(e.stdin)
	}
	return os.ReadFile(name)
}

// colour wraps s in an ANSI colour when w is a terminal and NO_COLOR is
// unset; pipes and files get plain text.
func colour(e *env, w io.Writer, code, s string) string {
	if !isTerminal(w) || e.getenv("NO_COLOR") != "" {
		return s
	}
	return "\x1b[" + code + "m" + s + "\x1b[0m"
}

// interruptContext is cancelled by Ctrl-C or SIGTERM.
func interruptContext() (context.Context, context.CancelFunc) {
	return signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
}
