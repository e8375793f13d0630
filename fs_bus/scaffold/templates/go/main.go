// @NAME@: an fs-bus function in Go, a functionstream:core@0.1.0 `processor`
// component built with the standard Go toolchain (build.sh).
//
// It counts how often each record's value has been seen, in the kv store
// "counts" (key: the value, value: the count in decimal), and emits
// "<value>=<count>" to output 0. A panic traps the call: the node reports the
// record that failed.
//
// abi.go and gc.go are the canonical-ABI glue (from fs-bus's
// examples/go-processor); the function is this file.
package main

import "strconv"

var (
	store  storeHandle
	opened bool
)

func fsInit(config [][2]string) {
	if !opened {
		store = openStore("counts")
		opened = true
	}
}

func fsProcess(sourceID uint32, data []byte) {
	if !opened { // a host may skip fs-init when there is no init_config
		fsInit(nil)
	}
	old, found, err := store.getState(data)
	if err != nil {
		panic("get-state: " + err.Error())
	}
	var count uint64
	if found {
		count, err = strconv.ParseUint(string(old), 10, 64)
		if err != nil {
			panic("the count of " + strconv.Quote(string(data)) + " is " + strconv.Quote(string(old)) + ", not a number")
		}
	}
	count++
	if err := store.putState(data, strconv.AppendUint(nil, count, 10)); err != nil {
		panic("put-state: " + err.Error())
	}
	out := append(append([]byte{}, data...), '=')
	emit(0, strconv.AppendUint(out, count, 10))
}

func fsClose() {
	if opened {
		store.drop()
		opened = false
	}
}

// main is not run: -buildmode=c-shared makes a reactor; the host calls the exports.
func main() {}
