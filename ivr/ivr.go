// Package ivr runs IVR trees (see config.IVR) for one call.
//
// A call's IVR is straight-line code: Run walks the tree node by node and drives
// a small Call interface whose methods block until the prompt has played, the
// caller pressed a key, or the queued call is over. When the caller hangs up the
// call's context is cancelled, the blocked method returns, and so does Run. The
// package does no I/O of its own.
package ivr

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/hotline-pbx/hotline/config"
)

// Call is what an IVR can do with a call. Every method blocks, and returns an
// error (ctx.Err() when the caller has hung up) if it cannot finish.
type Call interface {
	// Play plays a prompt to the end.
	Play(ctx context.Context, prompt string) error
	// Collect plays prompt (the first digit interrupts it) and then waits up to
	// timeout for a digit; returns up to max digits ("" on timeout).
	Collect(ctx context.Context, prompt string, max int, timeout time.Duration) (string, error)
	// Queue puts the caller in a queue and blocks until the queued call is over.
	Queue(ctx context.Context, queue string) error
	// Hangup ends the call.
	Hangup(ctx context.Context) error
}

// Result is how far a call got through its IVR.
type Result struct {
	Digits string   // every digit the caller pressed in menus, in order
	Queue  string   // queue entered, if any
	Path   []string // nodes visited, in order
}

// MaxSteps caps the nodes one call may visit. A tree that passes validation can
// still loop through menus (a "0" that replays the menu); past this the caller is
// hung up on rather than kept forever.
const MaxSteps = 100

// ErrLoop is returned when a call visits more than MaxSteps nodes.
var ErrLoop = errors.New("ivr: too many nodes visited; the tree loops")

// Run runs tree for one call, from its entry node until the call ends: hung up by
// the tree, handed to a queue (Queue owns the rest of the call), or hung up by the
// caller (ctx cancelled). Errors from the call and ctx.Err() come back wrapped
// with the name of the node. When the tree itself is broken (a missing node, an
// unknown node type, a loop), Run hangs up and returns an error.
//
// The Result is filled as far as the call got, also when Run returns an error.
func Run(ctx context.Context, tree *config.IVR, call Call) (Result, error) {
	var res Result
	if tree == nil {
		return res, hangUpOn(ctx, call, errors.New("ivr: no IVR tree"))
	}
	name := tree.Entry
	for {
		if err := ctx.Err(); err != nil {
			return res, fmt.Errorf("ivr node %q: %w", name, err)
		}
		if len(res.Path) == MaxSteps {
			return res, hangUpOn(ctx, call, fmt.Errorf("ivr node %q: %w", name, ErrLoop))
		}
		node := tree.Nodes[name]
		if node == nil {
			return res, hangUpOn(ctx, call, fmt.Errorf("ivr: node %q does not exist", name))
		}
		res.Path = append(res.Path, name)
		next, err := runNode(ctx, node, call, &res)
		if err != nil {
			return res, fmt.Errorf("ivr node %q: %w", name, err)
		}
		if next == "" {
			return res, nil
		}
		name = next
	}
}

// runNode runs one node and returns the next one, or "" when the call is over.
func runNode(ctx context.Context, n *config.Node, call Call, res *Result) (string, error) {
	switch n.Type {
	case config.NodePlay:
		for _, p := range n.Prompts {
			if err := call.Play(ctx, p); err != nil {
				return "", fmt.Errorf("play %q: %w", p, err)
			}
		}
		if n.Next == "" {
			return "", hangup(ctx, call)
		}
		return n.Next, nil
	case config.NodeMenu:
		return menu(ctx, n, call, res)
	case config.NodeQueue:
		res.Queue = n.Queue
		if err := call.Queue(ctx, n.Queue); err != nil {
			return "", fmt.Errorf("queue %q: %w", n.Queue, err)
		}
		return "", nil
	case config.NodeHangup:
		return "", hangup(ctx, call)
	default:
		return "", hangUpOn(ctx, call, fmt.Errorf("node type %q is not known", n.Type))
	}
}

// menu plays the menu until the caller picks a choice or runs out of tries. No
// digit before the timeout and a digit that is not a choice are both failed tries;
// a wrong digit hears the Invalid prompt first.
func menu(ctx context.Context, n *config.Node, call Call, res *Result) (string, error) {
	tries := n.Tries
	if tries <= 0 {
		tries = config.DefaultMenuTries
	}
	timeout := n.Timeout.Duration
	if timeout <= 0 {
		timeout = config.DefaultMenuTimeout
	}
	for range tries {
		digit, err := call.Collect(ctx, n.Prompt, 1, timeout)
		if err != nil {
			return "", fmt.Errorf("menu %q: %w", n.Prompt, err)
		}
		if digit == "" {
			continue
		}
		res.Digits += digit
		if target, ok := n.Choices[digit]; ok {
			if target == "" {
				return "", hangup(ctx, call)
			}
			return target, nil
		}
		if n.Invalid != "" {
			if err := call.Play(ctx, n.Invalid); err != nil {
				return "", fmt.Errorf("play %q: %w", n.Invalid, err)
			}
		}
	}
	if n.Fail == "" {
		return "", hangup(ctx, call)
	}
	return n.Fail, nil
}

func hangup(ctx context.Context, call Call) error {
	if err := call.Hangup(ctx); err != nil {
		return fmt.Errorf("hang up: %w", err)
	}
	return nil
}

// hangUpOn ends a call whose tree cannot go on, and returns why.
func hangUpOn(ctx context.Context, call Call, why error) error {
	if err := call.Hangup(ctx); err != nil {
		return errors.Join(why, fmt.Errorf("hang up: %w", err))
	}
	return why
}
