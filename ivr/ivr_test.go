package ivr

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/hotline-pbx/hotline/config"
)

// fakeCall plays a scripted caller: Collect returns the next of keys ("" is a
// timeout; an exhausted script times out), and every action is logged.
type fakeCall struct {
	keys        []string
	log         []string
	cancelOn    string // a Play of this prompt hangs the caller up mid-prompt
	cancel      context.CancelFunc
	queueErr    error
	collectArgs []string
}

func (f *fakeCall) Play(ctx context.Context, prompt string) error {
	f.log = append(f.log, "play "+prompt)
	if prompt == f.cancelOn {
		f.cancel()
	}
	return ctx.Err()
}

func (f *fakeCall) Collect(ctx context.Context, prompt string, max int, timeout time.Duration) (string, error) {
	f.log = append(f.log, "collect "+prompt)
	f.collectArgs = append(f.collectArgs, fmt.Sprintf("max=%d timeout=%v", max, timeout))
	if err := ctx.Err(); err != nil {
		return "", err
	}
	if len(f.keys) == 0 {
		return "", nil
	}
	key := f.keys[0]
	f.keys = f.keys[1:]
	return key, nil
}

func (f *fakeCall) Queue(ctx context.Context, queue string) error {
	f.log = append(f.log, "queue "+queue)
	if f.queueErr != nil {
		return f.queueErr
	}
	return ctx.Err()
}

func (f *fakeCall) Hangup(ctx context.Context) error {
	f.log = append(f.log, "hangup")
	return nil
}

// The demo IVR, as a caller of the demo hotline meets it.
func TestDemoIVR(t *testing.T) {
	tree := config.Default().IVRs["main"]
	tests := []struct {
		name     string
		keys     []string
		wantLog  []string
		wantRes  Result
		wantArgs string // the arguments of every Collect
	}{
		{
			name:    "press 1 for sales",
			keys:    []string{"1"},
			wantLog: []string{"play welcome", "collect menu", "queue sales"},
			wantRes: Result{Digits: "1", Queue: "sales", Path: []string{"welcome", "menu", "to-sales"}},
		},
		{
			name:    "press 9, hear it is invalid, then 2 for support",
			keys:    []string{"9", "2"},
			wantLog: []string{"play welcome", "collect menu", "play invalid", "collect menu", "queue support"},
			wantRes: Result{Digits: "92", Queue: "support", Path: []string{"welcome", "menu", "to-support"}},
		},
		{
			name:    "three timeouts: goodbye and hang up",
			keys:    nil,
			wantLog: []string{"play welcome", "collect menu", "collect menu", "collect menu", "play goodbye", "hangup"},
			wantRes: Result{Path: []string{"welcome", "menu", "goodbye"}},
		},
		{
			name:    "a timeout, a wrong key, then 1",
			keys:    []string{"", "#", "1"},
			wantLog: []string{"play welcome", "collect menu", "collect menu", "play invalid", "collect menu", "queue sales"},
			wantRes: Result{Digits: "#1", Queue: "sales", Path: []string{"welcome", "menu", "to-sales"}},
		},
		{
			name: "three wrong keys: invalid each time, then goodbye",
			keys: []string{"7", "8", "9"},
			wantLog: []string{"play welcome", "collect menu", "play invalid", "collect menu", "play invalid",
				"collect menu", "play invalid", "play goodbye", "hangup"},
			wantRes: Result{Digits: "789", Path: []string{"welcome", "menu", "goodbye"}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			call := &fakeCall{keys: tt.keys}
			res, err := Run(context.Background(), tree, call)
			if err != nil {
				t.Fatalf("Run: %v", err)
			}
			if !slices.Equal(call.log, tt.wantLog) {
				t.Errorf("call did:\n %s\nwant:\n %s", strings.Join(call.log, ", "), strings.Join(tt.wantLog, ", "))
			}
			if res.Digits != tt.wantRes.Digits || res.Queue != tt.wantRes.Queue || !slices.Equal(res.Path, tt.wantRes.Path) {
				t.Errorf("result = %+v, want %+v", res, tt.wantRes)
			}
			for _, args := range call.collectArgs {
				if args != "max=1 timeout=5s" {
					t.Errorf("Collect called with %s, want max=1 timeout=5s (the demo menu)", args)
				}
			}
		})
	}
}

func TestCallerHangsUpDuringPlay(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	call := &fakeCall{cancelOn: "welcome", cancel: cancel, keys: []string{"1"}}
	res, err := Run(ctx, config.Default().IVRs["main"], call)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
	if !strings.Contains(err.Error(), `"welcome"`) {
		t.Errorf("error %q does not name the node", err)
	}
	if !slices.Equal(call.log, []string{"play welcome"}) {
		t.Errorf("after the caller left, the call did %v", call.log)
	}
	if !slices.Equal(res.Path, []string{"welcome"}) {
		t.Errorf("Path = %v", res.Path)
	}
}

func TestCallerHangsUpDuringMenu(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	call := &fakeCall{cancelOn: "invalid", cancel: cancel, keys: []string{"5", "1"}}
	res, err := Run(ctx, config.Default().IVRs["main"], call)
	if !errors.Is(err, context.Canceled) || !strings.Contains(err.Error(), `"menu"`) {
		t.Fatalf("err = %v, want context.Canceled at node menu", err)
	}
	if res.Digits != "5" || res.Queue != "" {
		t.Errorf("result = %+v, want digits 5 and no queue", res)
	}
}

func TestQueueErrorIsWrapped(t *testing.T) {
	full := errors.New("queue full")
	call := &fakeCall{keys: []string{"2"}, queueErr: full}
	res, err := Run(context.Background(), config.Default().IVRs["main"], call)
	if !errors.Is(err, full) || !strings.Contains(err.Error(), `ivr node "to-support"`) {
		t.Fatalf("err = %v", err)
	}
	if res.Queue != "support" {
		t.Errorf("Queue = %q, want support (it was entered)", res.Queue)
	}
}

func TestTrees(t *testing.T) {
	play := func(next string, prompts ...string) *config.Node {
		return &config.Node{Type: config.NodePlay, Prompts: prompts, Next: next}
	}
	tests := []struct {
		name      string
		tree      *config.IVR
		keys      []string
		wantErr   error  // errors.Is target; nil for success
		wantInErr string // text the error must hold
		wantLog   []string
	}{
		{
			name: "hangup node",
			tree: &config.IVR{Entry: "a", Nodes: map[string]*config.Node{
				"a": play("b", "x", "y"), "b": {Type: config.NodeHangup},
			}},
			wantLog: []string{"play x", "play y", "hangup"},
		},
		{
			name: "menu without fail or invalid hangs up after its tries",
			tree: &config.IVR{Entry: "m", Nodes: map[string]*config.Node{
				"m": {Type: config.NodeMenu, Prompt: "p", Tries: 2, Choices: map[string]string{"1": "m"}},
			}},
			keys:    []string{"5", ""},
			wantLog: []string{"collect p", "collect p", "hangup"},
		},
		{
			name: "play nodes looping forever are cut off",
			tree: &config.IVR{Entry: "a", Nodes: map[string]*config.Node{
				"a": play("b", "x"), "b": play("a", "y"),
			}},
			wantErr: ErrLoop,
			wantLog: append(slices.Repeat([]string{"play x", "play y"}, MaxSteps/2), "hangup"),
		},
		{
			name: "a caller pressing 0 to replay the menu forever is cut off",
			tree: &config.IVR{Entry: "m", Nodes: map[string]*config.Node{
				"m": {Type: config.NodeMenu, Prompt: "p", Choices: map[string]string{"0": "m"}},
			}},
			keys:    slices.Repeat([]string{"0"}, 2*MaxSteps),
			wantErr: ErrLoop,
			wantLog: append(slices.Repeat([]string{"collect p"}, MaxSteps), "hangup"),
		},
		{
			name: "missing node",
			tree: &config.IVR{Entry: "a", Nodes: map[string]*config.Node{
				"a": play("nowhere", "x"),
			}},
			wantInErr: `node "nowhere" does not exist`,
			wantLog:   []string{"play x", "hangup"},
		},
		{
			name: "unknown node type",
			tree: &config.IVR{Entry: "a", Nodes: map[string]*config.Node{
				"a": {Type: "transfer"},
			}},
			wantInErr: `ivr node "a": node type "transfer" is not known`,
			wantLog:   []string{"hangup"},
		},
		{
			name:      "no tree",
			wantInErr: "no IVR tree",
			wantLog:   []string{"hangup"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			call := &fakeCall{keys: tt.keys}
			_, err := Run(context.Background(), tt.tree, call)
			switch {
			case tt.wantErr == nil && tt.wantInErr == "" && err != nil:
				t.Errorf("Run: %v", err)
			case tt.wantErr != nil && !errors.Is(err, tt.wantErr):
				t.Errorf("err = %v, want %v", err, tt.wantErr)
			case tt.wantInErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantInErr)):
				t.Errorf("err = %v, want it to say %q", err, tt.wantInErr)
			}
			if !slices.Equal(call.log, tt.wantLog) {
				t.Errorf("call did:\n %s\nwant:\n %s", strings.Join(call.log, ", "), strings.Join(tt.wantLog, ", "))
			}
		})
	}
}

// One caller through the demo menu to a queue: the IVR's own cost per call.
func BenchmarkRunDemo(b *testing.B) {
	tree := config.Default().IVRs["main"]
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Run(ctx, tree, nopCall{}); err != nil {
			b.Fatal(err)
		}
	}
}

// nopCall presses 1 at once and does nothing else.
type nopCall struct{}

func (nopCall) Play(context.Context, string) error { return nil }
func (nopCall) Collect(context.Context, string, int, time.Duration) (string, error) {
	return "1", nil
}
func (nopCall) Queue(context.Context, string) error { return nil }
func (nopCall) Hangup(context.Context) error        { return nil }
