package config

import (
	"strconv"
	"strings"
)

// BurntSushi/toml v1.6.0 keeps key positions private (MetaData.keyInfo), so this
// file finds them itself: a small scanner over source text that toml has already
// accepted, recording where every key, table header and array element starts.
// It only has to follow valid TOML; on anything else it still terminates, and a
// position it cannot find falls back to the enclosing table.

// keyPath names a value in the document: table and key names, with the index of
// each array element as its own segment (see index).
type keyPath []string

// indexMark starts the path segment of an array index; TOML keys can hold any
// character, but a NUL only when someone writes "\u0000" into a quoted key.
const indexMark = "\x00"

func index(i int) string { return indexMark + strconv.Itoa(i) }

func isIndex(seg string) bool { return strings.HasPrefix(seg, indexMark) }

// String returns a map key for the path.
func (p keyPath) String() string { return strings.Join(p, "\x1f") }

// with returns a new path: p followed by segs.
func (p keyPath) with(segs ...string) keyPath {
	out := make(keyPath, 0, len(p)+len(segs))
	return append(append(out, p...), segs...)
}

// maxDepth bounds the paths the locator records; the schema is 6 deep.
const maxDepth = 16

type position struct{ line, col int }

// positions maps keyPath.String() to where that key, table or element starts.
type positions map[string]position

// find returns the position of p, or of its nearest ancestor in the file.
func (ps positions) find(p keyPath) position {
	for i := len(p); i > 0; i-- {
		if at, ok := ps[p[:i].String()]; ok {
			return at
		}
	}
	return position{}
}

type locator struct {
	src       string
	i         int
	line      int
	lineStart int
	found     positions
	arrays    map[string]int // array-of-tables path -> elements seen so far
}

// locate returns the position of every key in src, which should be valid TOML.
func locate(src string) positions {
	l := &locator{src: src, line: 1, found: positions{}, arrays: map[string]int{}}
	if strings.HasPrefix(src, "\xef\xbb\xbf") { // toml skips a UTF-8 BOM too
		l.i, l.lineStart = 3, 3
	}
	var table keyPath
	for l.i < len(l.src) {
		start := l.i
		l.skipBlank()
		if l.i >= len(l.src) {
			break
		}
		if l.peek() == '[' {
			table = l.header()
		} else {
			l.keyValue(table)
			l.skipLine()
		}
		if l.i == start { // cannot happen on valid TOML; never loop forever
			l.advance()
		}
	}
	return l.found
}

func (l *locator) here() position { return position{l.line, l.i - l.lineStart + 1} }

func (l *locator) peek() byte {
	if l.i < len(l.src) {
		return l.src[l.i]
	}
	return 0
}

func (l *locator) advance() {
	if l.i >= len(l.src) {
		return
	}
	if l.src[l.i] == '\n' {
		l.line++
		l.lineStart = l.i + 1
	}
	l.i++
}

func (l *locator) record(p keyPath, at position) {
	k := p.String()
	if _, ok := l.found[k]; !ok {
		l.found[k] = at
	}
}

func (l *locator) skipSpace() {
	for c := l.peek(); c == ' ' || c == '\t'; c = l.peek() {
		l.advance()
	}
}

// skipBlank skips white space, newlines and comments.
func (l *locator) skipBlank() {
	for l.i < len(l.src) {
		switch l.peek() {
		case ' ', '\t', '\r', '\n':
			l.advance()
		case '#':
			l.skipLine()
		default:
			return
		}
	}
}

// skipLine skips to the end of the line (a trailing comment, in valid TOML).
func (l *locator) skipLine() {
	for l.i < len(l.src) && l.peek() != '\n' {
		l.advance()
	}
}

// header reads "[a.b]" or "[[a.b]]" and returns the path of the table it opens.
func (l *locator) header() keyPath {
	at := l.here()
	l.advance()
	array := l.peek() == '['
	if array {
		l.advance()
	}
	segs := l.key()
	l.skipLine()

	var cur keyPath
	for j, seg := range segs {
		cur = cur.with(seg)
		if j == len(segs)-1 && array {
			k := cur.String()
			n := l.arrays[k]
			l.arrays[k] = n + 1
			l.record(cur, at)
			cur = cur.with(index(n))
		} else if n, ok := l.arrays[cur.String()]; ok && n > 0 {
			cur = cur.with(index(n - 1)) // [a.b] after [[a]] extends the last element
		}
		l.record(cur, at)
	}
	return cur
}

// keyValue reads "key = value" inside table.
func (l *locator) keyValue(table keyPath) {
	at := l.here()
	segs := l.key()
	if len(segs) == 0 {
		return
	}
	p := table
	for _, seg := range segs {
		if len(p) >= maxDepth {
			break
		}
		p = p.with(seg)
		l.record(p, at)
	}
	l.skipSpace()
	if l.peek() != '=' {
		return
	}
	l.advance()
	l.skipSpace()
	l.value(p)
}

// key reads a dotted key and returns its parts.
func (l *locator) key() []string {
	var segs []string
	for {
		l.skipSpace()
		switch c := l.peek(); {
		case c == '"' || c == '\'':
			segs = append(segs, l.quotedKey())
		case isBareKeyChar(c):
			start := l.i
			for isBareKeyChar(l.peek()) {
				l.advance()
			}
			segs = append(segs, l.src[start:l.i])
		default:
			return segs
		}
		l.skipSpace()
		if l.peek() != '.' {
			return segs
		}
		l.advance()
	}
}

func isBareKeyChar(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-'
}

func (l *locator) quotedKey() string {
	quote := l.peek()
	start := l.i
	l.skipLineString()
	raw := l.src[start:min(l.i, len(l.src))]
	if quote == '\'' {
		return strings.Trim(raw, "'")
	}
	if s, err := strconv.Unquote(raw); err == nil {
		return s
	}
	return strings.Trim(raw, `"`) // an escape Go does not know; the position is a best effort
}

// value skips one value, recording the keys of inline tables and the start of
// each array element under p.
func (l *locator) value(p keyPath) {
	switch l.peek() {
	case '"', '\'':
		l.skipString()
	case '[':
		l.advance()
		for n := 0; l.i < len(l.src); n++ {
			l.skipBlank()
			if l.peek() == ']' {
				l.advance()
				return
			}
			start := l.i
			elem := p
			if len(p) < maxDepth { // deeper than any setting; don't go quadratic on [[[[...
				elem = p.with(index(n))
				l.record(elem, l.here())
			}
			l.value(elem)
			l.skipBlank()
			if l.peek() == ',' {
				l.advance()
			}
			if l.i == start {
				l.advance()
			}
		}
	case '{':
		l.advance()
		for l.i < len(l.src) {
			l.skipBlank()
			if l.peek() == '}' {
				l.advance()
				return
			}
			start := l.i
			l.keyValue(p)
			l.skipBlank()
			if l.peek() == ',' {
				l.advance()
			}
			if l.i == start {
				l.advance()
			}
		}
	default:
		l.skipScalar()
	}
}

// skipScalar skips a number, boolean or date-time.
func (l *locator) skipScalar() {
	start := l.i
	for l.i < len(l.src) && !strings.ContainsRune(" \t\r\n,]}#", rune(l.peek())) {
		l.advance()
	}
	// "1979-05-27 07:32:00Z": a date-time may use a space between date and time.
	if l.i-start == 10 && l.src[start+4] == '-' && l.peek() == ' ' &&
		l.i+1 < len(l.src) && l.src[l.i+1] >= '0' && l.src[l.i+1] <= '9' {
		l.advance()
		l.skipScalar()
	}
}

func (l *locator) skipString() {
	quote := l.peek()
	triple := strings.Repeat(string(quote), 3)
	if strings.HasPrefix(l.src[l.i:], triple) {
		for range 3 {
			l.advance()
		}
		for l.i < len(l.src) {
			if quote == '"' && l.peek() == '\\' {
				l.advance()
				l.advance()
				continue
			}
			if strings.HasPrefix(l.src[l.i:], triple) {
				for range 3 {
					l.advance()
				}
				for n := 0; n < 2 && l.peek() == quote; n++ { // """a"""" ends with a quote in the string
					l.advance()
				}
				return
			}
			l.advance()
		}
		return
	}
	l.skipLineString()
}

// skipLineString passes a one-line string, '...' or "..." with escapes.
func (l *locator) skipLineString() {
	quote := l.peek()
	l.advance()
	for l.i < len(l.src) && l.peek() != quote && l.peek() != '\n' {
		if quote == '"' && l.peek() == '\\' {
			l.advance()
		}
		l.advance()
	}
	l.advance()
}
