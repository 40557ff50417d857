package mirror

import (
	"strings"

	"github.com/pdslog/pdslog/eventlog"
	"github.com/pdslog/pdslog/projections/mirror/d1"
)

// request is one D1 request being filled: rows grouped by table, the R2
// uploads that must precede it and the R2 deletions that follow it.
type request struct {
	maxStatements int
	maxBytes      int

	tables  [numTables][]op
	groups  [numTables]group // the open statement of each table
	stmts   int              // statements so far, merged
	bytes   int              // estimated body size
	seen    map[string]bool  // dedup keys (blocks) already in the request
	uploads []upload
	trash   []trash
	last    eventlog.Seq // the last event entirely in the request; 0 if none
	first   eventlog.Seq // the first event with rows in it
}

// group is the statement a table's next row may join.
type group struct {
	tmpl *template
	rows int
}

// reserve is room kept for the trash and cursor statements.
const reserve = 2

func newRequest(maxStatements, maxBytes int) *request {
	return &request{maxStatements: maxStatements, maxBytes: maxBytes, seen: map[string]bool{}}
}

func (r *request) empty() bool {
	if len(r.uploads) > 0 || len(r.trash) > 0 {
		return false
	}
	for _, t := range r.tables {
		if len(t) > 0 {
			return false
		}
	}
	return true
}

// cost is what adding ops would add: statements and bytes, counting merges.
func (r *request) cost(ops []op) (int, int) {
	groups := r.groups
	stmts, size := 0, 0
	for i := range ops {
		o := &ops[i]
		if o.key != "" && r.seen[o.key] {
			continue
		}
		g := &groups[o.tmpl.table]
		size += o.size()
		if o.tmpl.multi && g.tmpl == o.tmpl && g.rows < o.tmpl.maxRows() {
			g.rows++
			size += len(o.tmpl.row) + 2
			continue
		}
		stmts++
		size += len(o.tmpl.head) + len(o.tmpl.row) + len(o.tmpl.tail) + 32
		*g = group{tmpl: o.tmpl, rows: 1}
	}
	return stmts, size
}

// fits reports whether ops fit in the request.
func (r *request) fits(ops []op) bool {
	s, b := r.cost(ops)
	return r.stmts+s+reserve <= r.maxStatements && r.bytes+b <= r.maxBytes
}

// add adds ops (whether they fit is the caller's business).
func (r *request) add(ops []op) {
	s, b := r.cost(ops)
	r.stmts += s
	r.bytes += b
	for i := range ops {
		o := ops[i]
		if o.key != "" {
			if r.seen[o.key] {
				continue
			}
			r.seen[o.key] = true
		}
		t := o.tmpl.table
		r.tables[t] = append(r.tables[t], o)
		g := &r.groups[t]
		if o.tmpl.multi && g.tmpl == o.tmpl && g.rows < o.tmpl.maxRows() {
			g.rows++
		} else {
			*g = group{tmpl: o.tmpl, rows: 1}
		}
	}
}

// pending is what a request needs done in R2 around it: the uploads before
// it, the deletions after it.
type pending struct {
	uploads []upload
	trash   []trash
}

// statements returns the request's statements, merged, and what to do in
// R2 around them. Uploads of objects the same request later deletes are
// dropped, and so is trash an upload later in the request brings back.
func (r *request) statements() ([]d1.Statement, pending) {
	var p pending
	lastUpload := map[string]eventlog.Seq{}
	for _, u := range r.uploads {
		lastUpload[u.key] = max(lastUpload[u.key], u.seq)
	}
	lastTrash := map[string]eventlog.Seq{}
	for _, t := range r.trash {
		lastTrash[t.key] = max(lastTrash[t.key], t.seq)
	}
	trashed := func(key string, seq eventlog.Seq) bool {
		for k, s := range lastTrash {
			if s > seq && (k == key || strings.HasSuffix(k, "/") && strings.HasPrefix(key, k)) {
				return true
			}
		}
		return false
	}
	for _, u := range r.uploads {
		if !trashed(u.key, u.seq) {
			p.uploads = append(p.uploads, u)
		}
	}
	for _, t := range r.trash {
		if lastUpload[t.key] <= t.seq {
			p.trash = append(p.trash, t)
		}
	}
	var out []d1.Statement
	for _, ops := range r.tables {
		out = appendMerged(out, ops)
	}
	var tops []op
	for _, t := range p.trash {
		tops = append(tops, op{tmpl: tmplTrash, args: []string{t.key, seqs(t.seq)}})
	}
	out = appendMerged(out, tops)
	return out, p
}

// appendMerged appends ops as statements, consecutive rows of one
// multi-row template sharing one.
func appendMerged(out []d1.Statement, ops []op) []d1.Statement {
	for i := 0; i < len(ops); {
		o := ops[i]
		if !o.tmpl.multi {
			sql := o.sql
			if sql == "" {
				sql = o.tmpl.head
			}
			out = append(out, d1.Statement{SQL: sql, Params: o.args})
			i++
			continue
		}
		j := i + 1
		for j < len(ops) && ops[j].tmpl == o.tmpl && j-i < o.tmpl.maxRows() {
			j++
		}
		var sql strings.Builder
		sql.WriteString(o.tmpl.head)
		params := make([]string, 0, (j-i)*o.tmpl.cols)
		for k := i; k < j; k++ {
			if k > i {
				sql.WriteString(", ")
			}
			sql.WriteString(o.tmpl.row)
			params = append(params, ops[k].args...)
		}
		sql.WriteString(o.tmpl.tail)
		out = append(out, d1.Statement{SQL: sql.String(), Params: params})
		i = j
	}
	return out
}
