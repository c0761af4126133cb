package backup

import (
	"bufio"
	"fmt"
	"hash/crc32"
	"math/big"
	"math/bits"
	"strconv"
	"strings"
)

// Data files hold rows in the LOAD DATA default text format, which the
// server parses far faster than INSERT statements: fields separated by TAB,
// rows by LF, NULL as \N, and backslash escapes for backslash, TAB, LF, CR
// and NUL. Values are the column bytes as stored (the dump sets
// character_set_results = binary; the restore loads with CHARACTER SET
// binary), so no character set conversion happens on either side.

// escapes maps each byte that must be escaped to its escape letter.
var escapes = [256]byte{'\\': '\\', '\t': 't', '\n': 'n', '\r': 'r', 0: '0'}

// appendField appends one escaped field (nil is NULL).
func appendField(dst, v []byte, isNull bool) []byte {
	if isNull {
		return append(dst, '\\', 'N')
	}
	start := 0
	for i, c := range v {
		if esc := escapes[c]; esc != 0 {
			dst = append(dst, v[start:i]...)
			dst = append(dst, '\\', esc)
			start = i + 1
		}
	}
	return append(dst, v[start:]...)
}

// EncodeRow appends one row (nil entries are NULL) and its newline.
func EncodeRow(dst []byte, row [][]byte) []byte {
	for i, v := range row {
		if i > 0 {
			dst = append(dst, '\t')
		}
		dst = appendField(dst, v, v == nil)
	}
	return append(dst, '\n')
}

// DecodeRows parses the text format back into rows; it is the reference the
// tests hold EncodeRow to (the server does the real parsing on restore).
func DecodeRows(data string) ([][][]byte, error) {
	var out [][][]byte
	sc := bufio.NewScanner(strings.NewReader(data))
	sc.Buffer(make([]byte, 1<<20), 1<<30)
	for sc.Scan() {
		var row [][]byte
		var field []byte
		null := false
		line := sc.Text()
		for i := 0; i < len(line); i++ {
			c := line[i]
			switch {
			case c == '\t':
				if null {
					row = append(row, nil)
				} else {
					row = append(row, append([]byte{}, field...))
				}
				field, null = field[:0], false
			case c == '\\':
				if i+1 >= len(line) {
					return nil, fmt.Errorf("row %d: trailing backslash", len(out)+1)
				}
				i++
				switch line[i] {
				case 'N':
					null = true
				case 't':
					field = append(field, '\t')
				case 'n':
					field = append(field, '\n')
				case 'r':
					field = append(field, '\r')
				case '0':
					field = append(field, 0)
				default:
					field = append(field, line[i])
				}
			default:
				field = append(field, c)
			}
		}
		if null {
			row = append(row, nil)
		} else {
			row = append(row, append([]byte{}, field...))
		}
		out = append(out, row)
	}
	return out, sc.Err()
}

// Chunk is a primary-key range [Lo, Hi) of a table; a missing bound is
// open.
type Chunk struct {
	Lo, Hi       int64
	HasLo, HasHi bool
}

// Where renders the chunk as a condition on column pk ("" for the whole table).
func (c Chunk) Where(pk string) string {
	var parts []string
	if c.HasLo {
		parts = append(parts, quoteIdent(pk)+" >= "+strconv.FormatInt(c.Lo, 10))
	}
	if c.HasHi {
		parts = append(parts, quoteIdent(pk)+" < "+strconv.FormatInt(c.Hi, 10))
	}
	return strings.Join(parts, " AND ")
}

// PlanChunks splits the key range [min, max] of a table holding about rows
// rows into ranges of about chunkRows rows each. The first and last chunks
// are open, so rows outside the estimate are never lost.
func PlanChunks(min, max, rows, chunkRows int64) []Chunk {
	if chunkRows <= 0 || rows <= chunkRows || max <= min {
		return []Chunk{{}}
	}
	n := (rows + chunkRows - 1) / chunkRows
	span := uint64(max - min)
	step := span / uint64(n)
	if step == 0 {
		step = 1
	}
	var out []Chunk
	lo := min
	for i := int64(0); i < n-1; i++ {
		hi := int64(uint64(lo) + step)
		if hi > max || hi <= lo {
			break
		}
		c := Chunk{Lo: lo, Hi: hi, HasLo: i > 0, HasHi: true}
		out = append(out, c)
		lo = hi
	}
	return append(out, Chunk{Lo: lo, HasLo: len(out) > 0})
}

// ColumnExpr is how a column is selected, both by the dump and inside
// ChecksumQuery, so that the bytes digested on both sides are the same and
// the value survives the trip through text. The server's text protocol
// prints FLOAT with 6 significant digits (lossy) and DOUBLE as "1e+300"
// where its string conversion says "1e300": a FLOAT is selected as the
// string of the exact DOUBLE it widens to, a DOUBLE as its string.
// INET6, INET4 and UUID are selected as their stored bytes: LOAD DATA
// ... CHARACTER SET binary would read their text form as an invalid binary
// value and store NULL. Everything else is selected as is.
func ColumnExpr(column, dataType string) string {
	q := quoteIdent(column)
	switch strings.ToLower(dataType) {
	case "inet6", "inet4", "uuid":
		return "CAST(" + q + " AS BINARY)"
	case "float":
		return "CONCAT(CAST(" + q + " AS DOUBLE))"
	case "double", "real", "double precision":
		return "CONCAT(" + q + ")"
	}
	return q
}

// ChecksumQuery returns the query whose single row is the row count and a
// checksum of table's columns (types are their information_schema
// DATA_TYPEs): the sum over rows of a 64-bit digest, CRC32 (high half) and
// CRC32C (low half) of the row's bytes as the dump sees them, with a NULL
// map so that NULL and ” differ. The sum does not depend on row order, so
// the same query on a restored copy must give the same result, and RowSum
// computes the same value from the dumped rows. The server computes it: no
// row leaves the server. CRC32 alone would be too weak.
func ChecksumQuery(table string, columns, types []string) string {
	if len(columns) == 0 {
		return "SELECT COUNT(*), '0' FROM " + table
	}
	nulls := make([]string, len(columns))
	vals := make([]string, len(columns))
	for i, c := range columns {
		nulls[i] = "ISNULL(" + quoteIdent(c) + ")"
		typ := ""
		if i < len(types) {
			typ = types[i]
		}
		// CONVERT, not CAST: CAST(inet6 AS BINARY) gives the 16 stored
		// bytes, the dump gets the text form.
		vals[i] = "CONVERT(" + ColumnExpr(c, typ) + " USING binary)"
	}
	row := "CONCAT_WS(0x1f, CONCAT(" + strings.Join(nulls, ", ") + "), " + strings.Join(vals, ", ") + ")"
	return "SELECT COUNT(*), CAST(COALESCE(SUM((CRC32(" + row + ") << 32) | CRC32C(" + row + ")), 0) AS CHAR) FROM " + table
}

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// RowSum accumulates the checksum of ChecksumQuery on the client, from the
// same column bytes the server digests, so that a full gets its recorded
// checksums from the rows it streams anyway instead of a second scan. The
// sum is kept in 128 bits (the server's SUM is a DECIMAL).
type RowSum struct {
	hi, lo uint64
	buf    []byte
}

// Add digests one row (nil entries are NULL).
func (s *RowSum) Add(row [][]byte) {
	b := s.buf[:0]
	for _, v := range row {
		if v == nil {
			b = append(b, '1')
		} else {
			b = append(b, '0')
		}
	}
	for _, v := range row {
		if v != nil {
			b = append(b, 0x1f)
			b = append(b, v...)
		}
	}
	s.buf = b
	d := uint64(crc32.ChecksumIEEE(b))<<32 | uint64(crc32.Checksum(b, castagnoli))
	var carry uint64
	s.lo, carry = bits.Add64(s.lo, d, 0)
	s.hi += carry
}

// Merge adds the rows summed in o.
func (s *RowSum) Merge(o *RowSum) {
	var carry uint64
	s.lo, carry = bits.Add64(s.lo, o.lo, 0)
	s.hi += o.hi + carry
}

// String is the sum in decimal, as the server prints it.
func (s *RowSum) String() string {
	n := new(big.Int).SetUint64(s.hi)
	n.Lsh(n, 64)
	return n.Or(n, new(big.Int).SetUint64(s.lo)).String()
}
