// Package logsearch finds the jobs whose logs contain a string. Archived
// logs are indexed in segments: one blob per batch of a project's logs
// holding, for every trigram bucket, a bitmap of the logs that contain a
// trigram falling in it (a bloom filter per log, stored bit-sliced so a
// query reads a few bytes per bucket for the whole batch). A query keeps
// the logs whose bits are all set for its trigrams and scans only those;
// logs not yet indexed (live, or archived moments ago) are scanned.
package logsearch

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math/bits"
	"slices"
)

// segmentMagic starts every segment blob (version 1).
var segmentMagic = [8]byte{'G', 'L', 'O', 'G', 'S', 'E', 'G', '1'}

const (
	// minBucketsLog2 and maxBucketsLog2 bound a segment's buckets: a
	// segment has about a quarter as many buckets as its largest log has
	// bytes (a log has far fewer distinct trigrams than bytes), so a bit
	// is set for a small share of the buckets of each log.
	minBucketsLog2 = 12
	maxBucketsLog2 = 18
	headerSize     = 16 // magic, log count (u32), bucket bits (u32)
)

// fold lowers ASCII letters: the index is case-insensitive so one index
// serves both kinds of query.
func fold(c byte) byte { return foldTable[c] }

var foldTable = func() (t [256]byte) {
	for i := range t {
		t[i] = byte(i)
		if 'A' <= i && i <= 'Z' {
			t[i] = byte(i) + 'a' - 'A'
		}
	}
	return t
}()

// bucketOf hashes a folded trigram into one of 1<<log2 buckets.
func bucketOf(a, b, c byte, log2 uint) uint32 {
	return (uint32(a)<<16 | uint32(b)<<8 | uint32(c)) * 2654435761 >> (32 - log2)
}

// bucketsLog2For sizes a segment whose largest log has maxSize bytes.
func bucketsLog2For(maxSize int64) uint {
	n := uint(bits.Len64(uint64(max(maxSize/4, 1))))
	return min(max(n, minBucketsLog2), maxBucketsLog2)
}

// segmentBuilder accumulates logs into a segment's bitmaps.
type segmentBuilder struct {
	log2   uint
	width  int // bytes per bucket row: one bit per log
	jobIDs []int64
	rows   []byte   // bucket-major: rows[bucket*width + doc/8]
	seen   []uint64 // the buckets of the log being added (one at a time)
}

func newSegmentBuilder(logs int, maxSize int64) *segmentBuilder {
	log2 := bucketsLog2For(maxSize)
	width := (logs + 7) / 8
	return &segmentBuilder{log2: log2, width: width, rows: make([]byte, (1<<log2)*width)}
}

// trigramWriter collects the buckets of one log as its bytes stream
// through, in a bitmap small enough to stay in cache (the bucket rows are
// not: setting their bits per byte ran at a tenth of the speed); finish
// copies them into the rows.
type trigramWriter struct {
	b      *segmentBuilder
	doc    int
	p0, p1 byte
	n      int64
	seen   []uint64
}

func (b *segmentBuilder) add(jobID int64) *trigramWriter {
	b.jobIDs = append(b.jobIDs, jobID)
	if b.seen == nil {
		b.seen = make([]uint64, (1<<b.log2)/64)
	}
	clear(b.seen)
	return &trigramWriter{b: b, doc: len(b.jobIDs) - 1, seen: b.seen}
}

func (w *trigramWriter) Write(p []byte) (int, error) {
	shift, seen := 32-w.b.log2, w.seen
	tri := uint32(w.p0)<<8 | uint32(w.p1) // the last two bytes, rolling
	i := 0
	for ; w.n+int64(i) < 2 && i < len(p); i++ {
		tri = tri<<8 | uint32(foldTable[p[i]])
	}
	for _, c := range p[i:] {
		tri = (tri<<8 | uint32(foldTable[c])) & 0xffffff
		bkt := tri * 2654435761 >> shift // bucketOf, inlined
		seen[bkt>>6] |= 1 << (bkt & 63)
	}
	w.p0, w.p1 = byte(tri>>8), byte(tri)
	w.n += int64(len(p))
	return len(p), nil
}

// finish sets the log's bit in the row of every bucket it touched.
func (w *trigramWriter) finish() {
	b := w.b
	byteIdx, mask := w.doc/8, byte(1)<<(w.doc%8)
	for word, v := range w.seen {
		for v != 0 {
			bkt := word*64 + bits.TrailingZeros64(v)
			b.rows[bkt*b.width+byteIdx] |= mask
			v &= v - 1
		}
	}
}

// encode writes the segment: header, job ids, bucket rows.
func (b *segmentBuilder) encode() []byte {
	out := make([]byte, headerSize+8*len(b.jobIDs), headerSize+8*len(b.jobIDs)+len(b.rows))
	copy(out, segmentMagic[:])
	binary.LittleEndian.PutUint32(out[8:], uint32(len(b.jobIDs)))
	binary.LittleEndian.PutUint32(out[12:], uint32(b.log2))
	for i, id := range b.jobIDs {
		binary.LittleEndian.PutUint64(out[headerSize+8*i:], uint64(id))
	}
	return append(out, b.rows...)
}

// segmentHeader is a segment's immutable head: its logs and geometry.
type segmentHeader struct {
	jobIDs []int64 // in doc order
	log2   uint
	width  int
}

var errBadSegment = errors.New("logsearch: malformed segment")

func readSegmentHeader(r io.ReaderAt, size int64) (*segmentHeader, error) {
	var head [headerSize]byte
	if _, err := r.ReadAt(head[:], 0); err != nil {
		return nil, fmt.Errorf("%w: %v", errBadSegment, err)
	}
	if [8]byte(head[:8]) != segmentMagic {
		return nil, errBadSegment
	}
	n := int(binary.LittleEndian.Uint32(head[8:]))
	log2 := uint(binary.LittleEndian.Uint32(head[12:]))
	h := &segmentHeader{log2: log2, width: (n + 7) / 8}
	if log2 < minBucketsLog2 || log2 > maxBucketsLog2 || size != int64(headerSize+8*n+(1<<log2)*h.width) {
		return nil, errBadSegment
	}
	raw := make([]byte, 8*n)
	if _, err := r.ReadAt(raw, headerSize); err != nil {
		return nil, fmt.Errorf("%w: %v", errBadSegment, err)
	}
	h.jobIDs = make([]int64, n)
	for i := range h.jobIDs {
		h.jobIDs[i] = int64(binary.LittleEndian.Uint64(raw[8*i:]))
	}
	return h, nil
}

// queryBuckets are the distinct buckets of q's folded trigrams, sorted.
func queryBuckets(q []byte, log2 uint) []uint32 {
	var out []uint32
	for i := 0; i+2 < len(q); i++ {
		out = append(out, bucketOf(fold(q[i]), fold(q[i+1]), fold(q[i+2]), log2))
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// mayContain returns the ids of the segment's logs whose bits are set in
// every bucket of q: the logs that may contain q (never missing one that does).
func (h *segmentHeader) mayContain(r io.ReaderAt, q []byte) ([]int64, error) {
	acc := make([]byte, h.width)
	for i := range acc {
		acc[i] = 0xff
	}
	row := make([]byte, h.width)
	base := int64(headerSize + 8*len(h.jobIDs))
	for _, bkt := range queryBuckets(q, h.log2) {
		if _, err := r.ReadAt(row, base+int64(bkt)*int64(h.width)); err != nil {
			return nil, fmt.Errorf("%w: %v", errBadSegment, err)
		}
		zero := true
		for i := range acc {
			acc[i] &= row[i]
			zero = zero && acc[i] == 0
		}
		if zero {
			return nil, nil
		}
	}
	var out []int64
	for doc, id := range h.jobIDs {
		if acc[doc/8]&(1<<(doc%8)) != 0 {
			out = append(out, id)
		}
	}
	return out, nil
}
