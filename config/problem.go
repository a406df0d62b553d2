package config

import (
	"cmp"
	"fmt"
	"slices"
	"strings"
)

// Problem is one thing wrong with a config file, at a place in it. Line and Col
// are 1-based; 0 means the place is not known (for example a required key that is
// missing from a file that has no table for it).
type Problem struct {
	File      string
	Line, Col int
	Msg       string
}

// Error returns "file:line:col: msg", the form editors and terminals link to.
func (p Problem) Error() string {
	switch {
	case p.Line > 0 && p.Col > 0:
		return fmt.Sprintf("%s:%d:%d: %s", p.File, p.Line, p.Col, p.Msg)
	case p.Line > 0:
		return fmt.Sprintf("%s:%d: %s", p.File, p.Line, p.Msg)
	default:
		return fmt.Sprintf("%s: %s", p.File, p.Msg)
	}
}

// Problems is every problem found in one file. Parse returns it as its error.
type Problems []Problem

// Error returns one problem per line.
func (ps Problems) Error() string {
	lines := make([]string, len(ps))
	for i, p := range ps {
		lines[i] = p.Error()
	}
	return strings.Join(lines, "\n")
}

// sortProblems orders problems as they appear in the file; problems without a
// place come last, in the order they were found.
func sortProblems(ps Problems) {
	slices.SortStableFunc(ps, func(a, b Problem) int {
		if (a.Line == 0) != (b.Line == 0) {
			if a.Line == 0 {
				return 1
			}
			return -1
		}
		return cmp.Or(cmp.Compare(a.Line, b.Line), cmp.Compare(a.Col, b.Col))
	})
}

// report collects the problems of one Parse, placing each at the position of the
// key path it is about.
type report struct {
	file     string
	pos      positions
	problems Problems
	broken   map[string]bool // paths whose value had the wrong type; later checks skip them
}

func newReport(file string, pos positions) *report {
	return &report{file: file, pos: pos, broken: map[string]bool{}}
}

// at records a problem about the value at path p (or, when p is absent from the
// file, about the nearest table that holds it).
func (r *report) at(p keyPath, format string, args ...any) {
	for i := len(p); i > 0; i-- {
		if r.broken[p[:i].String()] {
			return // already reported as a type error; don't pile on
		}
	}
	where := r.pos.find(p)
	r.problems = append(r.problems, Problem{File: r.file, Line: where.line, Col: where.col, Msg: fmt.Sprintf(format, args...)})
}

// typeError records a value of the wrong type at p and marks p broken.
func (r *report) typeError(p keyPath, format string, args ...any) {
	r.at(p, format, args...)
	r.broken[p.String()] = true
}

// result returns the problems sorted by position, or nil.
func (r *report) result() error {
	if len(r.problems) == 0 {
		return nil
	}
	sortProblems(r.problems)
	return r.problems
}
