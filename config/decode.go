package config

import (
	"encoding"
	"fmt"
	"maps"
	"reflect"
	"slices"
	"strings"
	"time"

	"github.com/BurntSushi/toml"
)

// Decoding happens in two steps. toml parses the text into generic maps (and
// reports syntax errors); then decoder walks those maps along the Config schema,
// filling the structs itself. toml's own struct decoding stops at the first
// wrong type and keeps key positions private; this walk reports every unknown
// key and every wrong type, each at its place, and keeps going.

// parseTOML parses src into generic maps. A syntax error comes back as a Problem.
func parseTOML(file, src string) (raw map[string]any, problem *Problem) {
	defer func() {
		if r := recover(); r != nil { // a bug in the parser must not take the daemon down
			raw, problem = nil, &Problem{File: file, Msg: fmt.Sprintf("TOML parser failed: %v", r)}
		}
	}()
	raw = map[string]any{}
	if _, err := toml.Decode(src, &raw); err != nil {
		p := Problem{File: file, Msg: "invalid TOML: " + err.Error()}
		if pe, ok := err.(toml.ParseError); ok {
			p.Line, p.Col, p.Msg = pe.Position.Line, pe.Position.Col, "invalid TOML: "+pe.Message
		}
		return nil, &p
	}
	return raw, nil
}

type decoder struct{ r *report }

var (
	durationType        = reflect.TypeFor[Duration]()
	textUnmarshalerType = reflect.TypeFor[encoding.TextUnmarshaler]()
)

// value decodes data at path p into rv. where says what holds the value and name
// what it is called there, for messages: `queue "sales": ring_timeout`.
func (d *decoder) value(p keyPath, where, name string, data any, rv reflect.Value) {
	if rv.Kind() == reflect.Pointer {
		if rv.IsNil() {
			rv.Set(reflect.New(rv.Type().Elem()))
		}
		rv = rv.Elem()
	}
	if reflect.PointerTo(rv.Type()).Implements(textUnmarshalerType) {
		s, ok := data.(string)
		if !ok {
			d.wrongType(p, where, name, expectedText(rv.Type()), data)
			return
		}
		if err := rv.Addr().Interface().(encoding.TextUnmarshaler).UnmarshalText([]byte(s)); err != nil {
			d.r.typeError(p, "%s %q: %v", subject(where, name), s, err)
		}
		return
	}
	switch rv.Kind() {
	case reflect.String:
		s, ok := data.(string)
		if !ok {
			d.wrongType(p, where, name, "a string", data)
			return
		}
		rv.SetString(s)
	case reflect.Int, reflect.Int64, reflect.Int32:
		n, ok := data.(int64)
		if !ok {
			d.wrongType(p, where, name, "an integer", data)
			return
		}
		if rv.OverflowInt(n) {
			d.r.typeError(p, "%s: %d is out of range", subject(where, name), n)
			return
		}
		rv.SetInt(n)
	case reflect.Bool:
		b, ok := data.(bool)
		if !ok {
			d.wrongType(p, where, name, "true or false", data)
			return
		}
		rv.SetBool(b)
	case reflect.Slice:
		d.slice(p, where, name, data, rv)
	case reflect.Map:
		d.tableMap(p, where, name, data, rv)
	case reflect.Struct:
		d.structure(p, where, name, data, rv)
	default: // a schema change this decoder does not follow yet
		d.r.typeError(p, "%s: cannot decode into %s", subject(where, name), rv.Type())
	}
}

func (d *decoder) wrongType(p keyPath, where, name, expected string, data any) {
	d.r.typeError(p, "%s: expected %s, found %s", subject(where, name), expected, tomlTypeName(data))
}

// subject joins where and name: `queue "sales": skill`.
func subject(where, name string) string {
	switch {
	case where == "":
		return name
	case name == "":
		return where
	}
	return where + ": " + name
}

func (d *decoder) slice(p keyPath, where, name string, data any, rv reflect.Value) {
	dv := reflect.ValueOf(data)
	ofTables := rv.Type().Elem().Kind() == reflect.Struct
	if data == nil || dv.Kind() != reflect.Slice {
		expected := "an array"
		if ofTables {
			expected = fmt.Sprintf("tables written as [[%s]]", toml.Key(tableNames(p)))
		}
		d.wrongType(p, where, name, expected, data)
		return
	}
	out := reflect.MakeSlice(rv.Type(), dv.Len(), dv.Len())
	for i := range dv.Len() {
		elem := dv.Index(i).Interface()
		if ofTables { // [[trunk]]: messages name the element, trunk "demo"
			d.value(p.with(index(i)), elementName(p[len(p)-1], i, elem), "", elem, out.Index(i))
		} else {
			d.value(p.with(index(i)), where, fmt.Sprintf("%s[%d]", name, i), elem, out.Index(i))
		}
	}
	rv.Set(out)
}

// elementName names an element of an array of tables in messages: by its name
// or id when it has one (trunk "demo", agent "1001"), else by number (trunk #2).
func elementName(array string, i int, elem any) string {
	if t, ok := elem.(map[string]any); ok {
		for _, k := range []string{"name", "id"} {
			if s, ok := t[k].(string); ok && s != "" {
				return fmt.Sprintf("%s %q", array, s)
			}
		}
	}
	return fmt.Sprintf("%s #%d", array, i+1)
}

// tableMap decodes a table whose keys are names chosen by the user ([queue.NAME]).
func (d *decoder) tableMap(p keyPath, where, name string, data any, rv reflect.Value) {
	t, ok := data.(map[string]any)
	if !ok {
		d.wrongType(p, where, name, "a table", data)
		return
	}
	out := reflect.MakeMapWithSize(rv.Type(), len(t))
	elemType := rv.Type().Elem()
	ofTables := elemType.Kind() == reflect.Pointer && elemType.Elem().Kind() == reflect.Struct
	for _, k := range slices.Sorted(maps.Keys(t)) {
		elem := reflect.New(elemType).Elem()
		if ofTables { // [ivr.main.node.menu]: messages say ivr "main" node "menu"
			d.value(p.with(k), nest(where, fmt.Sprintf("%s %q", p[len(p)-1], k)), "", t[k], elem)
		} else { // choices.1
			d.value(p.with(k), where, name+"."+toml.Key{k}.String(), t[k], elem)
		}
		out.SetMapIndex(reflect.ValueOf(k), elem)
	}
	rv.Set(out)
}

// structure decodes a table into a struct, reporting keys the struct lacks.
func (d *decoder) structure(p keyPath, where, name string, data any, rv reflect.Value) {
	t, ok := data.(map[string]any)
	if !ok {
		d.wrongType(p, where, name, "a table", data)
		return
	}
	fields := tomlFields(rv.Type())
	if where == "" {
		where = name // [sip], [rtp] ...
	}
	for _, k := range slices.Sorted(maps.Keys(t)) {
		i, ok := fields.index[k]
		if !ok {
			d.unknownKey(p, k, t[k], fields.names)
			continue
		}
		d.value(p.with(k), where, toml.Key{k}.String(), t[k], rv.Field(i))
	}
}

func (d *decoder) unknownKey(table keyPath, key string, data any, known []string) {
	what, in := "key", "at the top level"
	if len(table) > 0 {
		in = "in " + tableHeader(table)
	}
	switch data.(type) {
	case map[string]any, []map[string]any:
		what = "table"
	}
	d.r.typeError(table.with(key), "unknown %s %q %s; expected one of: %s", what, key, in, strings.Join(known, ", "))
}

// tableHeader writes the header of the table at p as it appears in the file.
func tableHeader(p keyPath) string {
	names := toml.Key(tableNames(p)).String()
	if isIndex(p[len(p)-1]) {
		return "[[" + names + "]]"
	}
	return "[" + names + "]"
}

// tableNames drops the array indexes from p.
func tableNames(p keyPath) []string {
	var names []string
	for _, seg := range p {
		if !isIndex(seg) {
			names = append(names, seg)
		}
	}
	return names
}

// nest appends a name to a description of where a value is.
func nest(where, name string) string {
	if where == "" {
		return name
	}
	return where + " " + name
}

func expectedText(t reflect.Type) string {
	if t == durationType {
		return `a duration like "15s"`
	}
	return "a string"
}

type fieldSet struct {
	index map[string]int // TOML key -> struct field index
	names []string       // TOML keys in declaration order
}

// tomlFields lists the fields of a struct that TOML can set: those with a toml tag.
func tomlFields(t reflect.Type) fieldSet {
	fs := fieldSet{index: map[string]int{}}
	for i := range t.NumField() {
		name, _, _ := strings.Cut(t.Field(i).Tag.Get("toml"), ",")
		if name == "" || name == "-" || !t.Field(i).IsExported() {
			continue
		}
		fs.index[name] = i
		fs.names = append(fs.names, name)
	}
	return fs
}

// tomlTypeName names the TOML type of a value the toml parser produced.
func tomlTypeName(v any) string {
	switch v := v.(type) {
	case string:
		return fmt.Sprintf("a string (%q)", v)
	case int64:
		return fmt.Sprintf("an integer (%d)", v)
	case float64:
		return fmt.Sprintf("a float (%v)", v)
	case bool:
		return fmt.Sprintf("a boolean (%v)", v)
	case time.Time:
		return "a date-time"
	case map[string]any:
		return "a table"
	case []map[string]any, []any:
		return "an array"
	case nil:
		return "nothing"
	default:
		return fmt.Sprintf("a %T", v)
	}
}
