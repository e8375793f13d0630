// The counter, an fs-bus function written in Go (a port of the Function Stream
// go-processor example to the standard Go toolchain).
//
// For every record it counts the words (split on ASCII whitespace) in the kv
// store, under key_prefix + word, as decimal ASCII; it also counts the records
// processed. Both live in the kv store, so they survive restarts. It emits one
// JSON record per input record to output 0:
//
//	{"total_processed": N, "counter_map": {"word": count, ...}}
//
// where counter_map holds the words of this record, in order of first
// appearance, with their counts after this record.
//
// The canonical-ABI glue (imports, exports, cabi_realloc) is in abi.go.
package main

import (
	"strconv"
	"unicode/utf8"
)

const (
	storeName = "counter-store"
	// The record count's key is key_prefix + totalSuffix. The space keeps it
	// apart from every word's key: words never contain whitespace.
	totalSuffix = " total_processed"
)

// Guest state: one instance serves one partition, calls never overlap.
var (
	keyPrefix = ""
	store     storeHandle
	opened    bool
)

func fsInit(config [][2]string) {
	for _, kv := range config {
		if kv[0] == "key_prefix" {
			keyPrefix = kv[1]
		}
	}
	if !opened {
		store = openStore(storeName)
		opened = true
	}
}

func fsProcess(sourceID uint32, data []byte) {
	if !opened { // a host may skip fs-init when there is no init_config
		fsInit(nil)
	}

	// Count this record's words, remembering the order they first appear in.
	var order []string
	seen := map[string]uint64{}
	for _, w := range fields(data) {
		word := string(w)
		if _, ok := seen[word]; !ok {
			order = append(order, word)
		}
		seen[word]++
	}

	for _, word := range order {
		seen[word] = add(keyPrefix+word, seen[word])
	}
	total := add(keyPrefix+totalSuffix, 1)

	out := make([]byte, 0, 64+32*len(order))
	out = append(out, `{"total_processed": `...)
	out = strconv.AppendUint(out, total, 10)
	out = append(out, `, "counter_map": {`...)
	for i, word := range order {
		if i > 0 {
			out = append(out, ", "...)
		}
		out = appendJSONString(out, word)
		out = append(out, ": "...)
		out = strconv.AppendUint(out, seen[word], 10)
	}
	out = append(out, "}}"...)
	emit(0, out)
}

func fsClose() {
	if opened {
		store.drop()
		opened = false
	}
}

// add adds n to the decimal counter at key and returns the new value. A kv
// failure or a value that is not a decimal number traps: counting on would
// give wrong numbers.
func add(key string, n uint64) uint64 {
	old, found, err := store.getState([]byte(key))
	if err != nil {
		panic("get-state " + strconv.Quote(key) + ": " + err.Error())
	}
	var count uint64
	if found {
		count, err = strconv.ParseUint(string(old), 10, 64)
		if err != nil {
			panic("counter " + strconv.Quote(key) + " holds " + strconv.Quote(string(old)) + ", not a number")
		}
	}
	count += n
	if err := store.putState([]byte(key), strconv.AppendUint(nil, count, 10)); err != nil {
		panic("put-state " + strconv.Quote(key) + ": " + err.Error())
	}
	return count
}

// fields splits on ASCII whitespace, like Python's bytes.split().
func fields(data []byte) [][]byte {
	var out [][]byte
	start := -1
	for i, c := range data {
		space := c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f'
		if space && start >= 0 {
			out = append(out, data[start:i])
			start = -1
		} else if !space && start < 0 {
			start = i
		}
	}
	if start >= 0 {
		out = append(out, data[start:])
	}
	return out
}

// appendJSONString writes s as a JSON string the way Python's
// json.dumps(ensure_ascii=False) does; invalid UTF-8 bytes become U+FFFD.
func appendJSONString(out []byte, s string) []byte {
	out = append(out, '"')
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == '"' || r == '\\':
			out = append(out, '\\', byte(r))
		case r == '\b':
			out = append(out, `\b`...)
		case r == '\f':
			out = append(out, `\f`...)
		case r == '\n':
			out = append(out, `\n`...)
		case r == '\r':
			out = append(out, `\r`...)
		case r == '\t':
			out = append(out, `\t`...)
		case r < 0x20:
			out = append(out, `\u00`...)
			out = append(out, "0123456789abcdef"[r>>4], "0123456789abcdef"[r&0xf])
		default: // includes utf8.RuneError for an invalid byte, written as U+FFFD
			out = utf8.AppendRune(out, r)
		}
		i += size
	}
	return append(out, '"')
}

// main is not run: -buildmode=c-shared makes a reactor whose _initialize
// sets up the Go runtime; the host then calls the exports.
func main() {}
