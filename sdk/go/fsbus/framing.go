package fsbus

// The framing of fs-bus:batch@0.1.0 (specified in fs_bus/runtime/framing.py):
// little-endian; an input batch is "FSBI", u32 count, then per record
// i64 timestamp, i64 offset, i32 partition, i32 key_len (-1: none),
// i32 value_len (-1: none), u32 header count, key, value, headers; an output
// batch is "FSBO", u32 count, then per record u32 target, i32 key_len,
// i32 value_len, u32 header count, key, value, headers, and a trailer
// i32 failed (-1: none), u32 error_len, error. A header is u32 name_len,
// i32 value_len (-1: none), name, value.

import (
	"encoding/binary"
	"errors"
)

var le = binary.LittleEndian

var errShort = errors.New("fsbus: input batch cut short")

func take(b []byte, pos int, n int32) ([]byte, int, error) {
	if n < 0 {
		return nil, pos, nil
	}
	end := pos + int(n)
	if end > len(b) {
		return nil, pos, errShort
	}
	return b[pos:end:end], end, nil
}

func decodeInput(b []byte, sourceID uint32, into []Record) ([]Record, error) {
	if len(b) < 8 || string(b[:4]) != "FSBI" {
		return into, errors.New("fsbus: not an input batch")
	}
	count := int(le.Uint32(b[4:]))
	pos := 8
	var err error
	for i := 0; i < count; i++ {
		if pos+32 > len(b) {
			return into, errShort
		}
		h := b[pos : pos+32]
		r := Record{
			Timestamp: int64(le.Uint64(h[0:])),
			Offset:    int64(le.Uint64(h[8:])),
			Partition: int32(le.Uint32(h[16:])),
			SourceID:  sourceID,
		}
		keyLen, valueLen, nHeaders := int32(le.Uint32(h[20:])), int32(le.Uint32(h[24:])), le.Uint32(h[28:])
		pos += 32
		if r.Key, pos, err = take(b, pos, keyLen); err != nil {
			return into, err
		}
		if r.Value, pos, err = take(b, pos, valueLen); err != nil {
			return into, err
		}
		for j := uint32(0); j < nHeaders; j++ {
			if pos+8 > len(b) {
				return into, errShort
			}
			nameLen, hvLen := int32(le.Uint32(b[pos:])), int32(le.Uint32(b[pos+4:]))
			pos += 8
			var name, value []byte
			if name, pos, err = take(b, pos, nameLen); err != nil {
				return into, err
			}
			if value, pos, err = take(b, pos, hvLen); err != nil {
				return into, err
			}
			r.Headers = append(r.Headers, Header{string(name), value})
		}
		into = append(into, r)
	}
	return into, nil
}

func putU32(b []byte, v uint32) { le.PutUint32(b, v) }

func appendU32(b []byte, v uint32) []byte { return le.AppendUint32(b, v) }

func length(b []byte) uint32 {
	if b == nil {
		return 0xFFFFFFFF // -1: none
	}
	return uint32(len(b))
}

func appendHeader(b []byte, target uint32, key []byte, valueLen uint32, nHeaders uint32) []byte {
	b = appendU32(b, target)
	b = appendU32(b, length(key))
	b = appendU32(b, valueLen)
	return appendU32(b, nHeaders)
}

func appendOutput(b []byte, target uint32, key, value []byte, headers []Header) []byte {
	b = appendHeader(b, target, key, length(value), uint32(len(headers)))
	b = append(b, key...)
	b = append(b, value...)
	for _, h := range headers {
		b = appendU32(b, uint32(len(h.Name)))
		b = appendU32(b, length(h.Value))
		b = append(b, h.Name...)
		b = append(b, h.Value...)
	}
	return b
}
