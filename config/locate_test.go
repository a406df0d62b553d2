package config

import (
	"strings"
	"testing"
)

const tricky = `# comment [not.a.table]
title = """
a ] [x] # not a comment
"""
[a]
b.c = 1
"quoted.key" = 'lit'
[[arr]]
x = [1, [2, 3], { y = 4 }]
[[arr]]
  x = 'second'
[arr.sub]
z = 1979-05-27 07:32:00Z
after = true
`

func TestLocate(t *testing.T) {
	want := map[string]position{ // counted by hand in tricky
		"title":                        {2, 1},
		"a":                            {5, 1},
		"a b":                          {6, 1},
		"a b c":                        {6, 1},
		"a quoted.key":                 {7, 1},
		"arr":                          {8, 1},
		"arr #0":                       {8, 1},
		"arr #0 x":                     {9, 1},
		"arr #0 x #0":                  {9, 6},
		"arr #0 x #1":                  {9, 9},
		"arr #0 x #1 #1":               {9, 13},
		"arr #0 x #2":                  {9, 17},
		"arr #0 x #2 y":                {9, 19},
		"arr #1":                       {10, 1},
		"arr #1 x":                     {11, 3},
		"arr #1 sub":                   {12, 1},
		"arr #1 sub z":                 {13, 1},
		"arr #1 sub after":             {14, 1},
		"arr #1 sub after #0 whatever": {14, 1}, // unknown paths fall back to the nearest ancestor
	}
	for _, src := range []string{tricky, strings.ReplaceAll(tricky, "\n", "\r\n"), "\xef\xbb\xbf" + tricky} {
		found := locate(src)
		for path, at := range want {
			if got := found.find(testPath(path)); got != at {
				t.Errorf("%q: position of %q = %v, want %v", src[:8], path, got, at)
			}
		}
		for _, path := range []string{
			"x",                      // inside the multi-line string: not a key
			"arr #1 sub z 07:32:00Z", // the time of the date-time, not a key
			"arr #0 x #2 y #0",       // 4 is not an array
			"quoted.key",             // a quoted key is one segment ...
			"a quoted key",           // ... not split on its dots
		} {
			if at, ok := found[testPath(path).String()]; ok {
				t.Errorf("%q: found %q at %v; it is not in the file", src[:8], path, at)
			}
		}
	}
}

// testPath reads "arr #0 x" as the path arr, index 0, x.
func testPath(s string) keyPath {
	var p keyPath
	for _, seg := range strings.Fields(s) {
		if strings.HasPrefix(seg, "#") {
			p = append(p, indexMark+seg[1:])
		} else {
			p = append(p, seg)
		}
	}
	return p
}

// locate sees only text toml accepted, but must still end on anything else.
func FuzzLocate(f *testing.F) {
	f.Add(tricky)
	f.Add(string(DemoTOML))
	f.Add(`a = [1, {b = "\"", c = '''x'''}`)
	f.Add("[[a]]\n[a.b]\n[[a.b.c]]\n")
	f.Fuzz(func(t *testing.T, src string) {
		lines := strings.Count(src, "\n") + 1
		for k, at := range locate(src) {
			if at.line < 1 || at.line > lines || at.col < 1 {
				t.Fatalf("key %q at %v, outside the %d lines of input", k, at, lines)
			}
		}
	})
}
