// The bench's Kafka Streams peer (bench/streams.py compiles it with javac at bench
// time and runs it with `java -cp`). Two topologies, one stream thread each:
//
//   --mode upper    the stateless peer of the throughput and latency cases: the DSL's
//                   mapValues(upper) from --source to --sink, untuned (library defaults)
//   --mode counter  the stateful case's word counter in the Processor API, over a
//                   persistent (RocksDB) key-value store with its changelog; it emits
//                   byte for byte what examples/go-processor and
//                   examples/python-processor/counter.py emit
//
// Runs until SIGTERM (a shutdown hook closes the application cleanly). Values and
// keys are raw bytes. Prints "STATE <new state>" on every state change.
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import java.util.concurrent.CountDownLatch;

import org.apache.kafka.common.serialization.Serdes;
import org.apache.kafka.common.utils.Bytes;
import org.apache.kafka.streams.KafkaStreams;
import org.apache.kafka.streams.StreamsBuilder;
import org.apache.kafka.streams.StreamsConfig;
import org.apache.kafka.streams.Topology;
import org.apache.kafka.streams.kstream.Consumed;
import org.apache.kafka.streams.kstream.Produced;
import org.apache.kafka.streams.processor.api.Processor;
import org.apache.kafka.streams.processor.api.ProcessorContext;
import org.apache.kafka.streams.processor.api.Record;
import org.apache.kafka.streams.state.KeyValueStore;
import org.apache.kafka.streams.state.StoreBuilder;
import org.apache.kafka.streams.state.Stores;

public final class BenchStreams {
    static final String STORE = "counter-store";
    // The record count's key is keyPrefix + TOTAL_SUFFIX: the space keeps it apart
    // from every word (words never contain whitespace), as in the Go counter.
    static final byte[] TOTAL_SUFFIX = " total_processed".getBytes(StandardCharsets.UTF_8);

    public static void main(String[] argv) throws Exception {
        Map<String, String> a = parseArgs(argv);
        String mode = require(a, "mode");
        Properties props = new Properties();
        props.put(StreamsConfig.APPLICATION_ID_CONFIG, require(a, "application-id"));
        props.put(StreamsConfig.BOOTSTRAP_SERVERS_CONFIG, require(a, "bootstrap"));
        props.put(StreamsConfig.STATE_DIR_CONFIG, require(a, "state-dir"));
        props.put(StreamsConfig.NUM_STREAM_THREADS_CONFIG, 1);
        props.put(StreamsConfig.PROCESSING_GUARANTEE_CONFIG, a.getOrDefault("guarantee", "at_least_once"));
        // Read the input from its beginning, as every other case does.
        props.put("auto.offset.reset", "earliest");

        Topology topology;
        switch (mode) {
            case "upper" -> topology = upper(require(a, "source"), require(a, "sink"));
            case "counter" -> topology = counter(require(a, "source"), require(a, "sink"),
                    a.getOrDefault("key-prefix", "").getBytes(StandardCharsets.UTF_8));
            default -> throw new IllegalArgumentException("--mode must be upper or counter, not " + mode);
        }

        KafkaStreams streams = new KafkaStreams(topology, props);
        CountDownLatch closed = new CountDownLatch(1);
        streams.setStateListener((now, before) -> System.out.println("STATE " + now));
        streams.setUncaughtExceptionHandler(e -> {
            e.printStackTrace();
            return org.apache.kafka.streams.errors.StreamsUncaughtExceptionHandler.StreamThreadExceptionResponse
                    .SHUTDOWN_APPLICATION;
        });
        Runtime.getRuntime().addShutdownHook(new Thread(() -> {
            streams.close();
            closed.countDown();
        }));
        streams.start();
        closed.await();
    }

    /** The stateless peer: mapValues(upper), ASCII only, like Python's bytes.upper(). */
    static Topology upper(String source, String sink) {
        StreamsBuilder b = new StreamsBuilder();
        b.stream(source, Consumed.with(Serdes.ByteArray(), Serdes.ByteArray()))
                .mapValues(BenchStreams::asciiUpper)
                .to(sink, Produced.with(Serdes.ByteArray(), Serdes.ByteArray()));
        return b.build();
    }

    static byte[] asciiUpper(byte[] v) {
        byte[] out = new byte[v.length];
        for (int i = 0; i < v.length; i++) {
            byte c = v[i];
            out[i] = (c >= 'a' && c <= 'z') ? (byte) (c - 32) : c;
        }
        return out;
    }

    /** The counter: source -> counter processor (with its store) -> sink. */
    static Topology counter(String source, String sink, byte[] keyPrefix) {
        // A persistent store is RocksDB; logging (the changelog topic) is on by default.
        // Caching is turned on as the DSL does by default: like fs-bus's checkpoints, it
        // writes a key's latest value to the changelog once per commit, not once per put.
        StoreBuilder<KeyValueStore<Bytes, byte[]>> store = Stores
                .keyValueStoreBuilder(Stores.persistentKeyValueStore(STORE), Serdes.Bytes(), Serdes.ByteArray())
                .withCachingEnabled();
        Topology t = new Topology();
        t.addSource("source", Serdes.ByteArray().deserializer(), Serdes.ByteArray().deserializer(), source);
        t.addProcessor("counter", () -> new Counter(keyPrefix), "source");
        t.addStateStore(store, "counter");
        t.addSink("sink", sink, Serdes.ByteArray().serializer(), Serdes.ByteArray().serializer(), "counter");
        return t;
    }

    static final class Counter implements Processor<byte[], byte[], byte[], byte[]> {
        private final byte[] keyPrefix;
        private ProcessorContext<byte[], byte[]> ctx;
        private KeyValueStore<Bytes, byte[]> store;

        Counter(byte[] keyPrefix) {
            this.keyPrefix = keyPrefix;
        }

        @Override
        public void init(ProcessorContext<byte[], byte[]> context) {
            ctx = context;
            store = context.getStateStore(STORE);
        }

        @Override
        public void process(Record<byte[], byte[]> record) {
            byte[] data = record.value() == null ? new byte[0] : record.value();
            // This record's words, in order of first appearance, with their occurrences.
            LinkedHashMap<String, long[]> seen = new LinkedHashMap<>();
            for (byte[] w : fields(data)) {
                String word = new String(w, StandardCharsets.ISO_8859_1); // a lossless key for the bytes
                seen.computeIfAbsent(word, k -> new long[1])[0]++;
            }
            StringBuilder out = new StringBuilder(64 + 32 * seen.size());
            List<Map.Entry<String, long[]>> words = new ArrayList<>(seen.entrySet());
            long[] counts = new long[words.size()];
            for (int i = 0; i < words.size(); i++) {
                counts[i] = add(words.get(i).getKey().getBytes(StandardCharsets.ISO_8859_1), words.get(i).getValue()[0]);
            }
            long total = add(TOTAL_SUFFIX, 1);
            out.append("{\"total_processed\": ").append(total).append(", \"counter_map\": {");
            for (int i = 0; i < words.size(); i++) {
                if (i > 0) {
                    out.append(", ");
                }
                byte[] raw = words.get(i).getKey().getBytes(StandardCharsets.ISO_8859_1);
                appendJsonString(out, new String(raw, StandardCharsets.UTF_8));
                out.append(": ").append(counts[i]);
            }
            out.append("}}");
            ctx.forward(record.withKey((byte[]) null).withValue(out.toString().getBytes(StandardCharsets.UTF_8)));
        }

        /** Adds n to the decimal counter at keyPrefix + word and returns the new value. */
        private long add(byte[] word, long n) {
            byte[] key = new byte[keyPrefix.length + word.length];
            System.arraycopy(keyPrefix, 0, key, 0, keyPrefix.length);
            System.arraycopy(word, 0, key, keyPrefix.length, word.length);
            Bytes k = Bytes.wrap(key);
            byte[] old = store.get(k);
            long count = (old == null ? 0 : Long.parseLong(new String(old, StandardCharsets.US_ASCII))) + n;
            store.put(k, Long.toString(count).getBytes(StandardCharsets.US_ASCII));
            return count;
        }
    }

    /** Splits on ASCII whitespace, like Python's bytes.split() and the Go counter's fields(). */
    static List<byte[]> fields(byte[] data) {
        List<byte[]> out = new ArrayList<>();
        int start = -1;
        for (int i = 0; i < data.length; i++) {
            byte c = data[i];
            boolean space = c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == 0x0b || c == '\f';
            if (space && start >= 0) {
                out.add(java.util.Arrays.copyOfRange(data, start, i));
                start = -1;
            } else if (!space && start < 0) {
                start = i;
            }
        }
        if (start >= 0) {
            out.add(java.util.Arrays.copyOfRange(data, start, data.length));
        }
        return out;
    }

    /** s as a JSON string the way Python's json.dumps(ensure_ascii=False) writes it. */
    static void appendJsonString(StringBuilder out, String s) {
        out.append('"');
        for (int i = 0; i < s.length(); i++) {
            char c = s.charAt(i);
            switch (c) {
                case '"' -> out.append("\\\"");
                case '\\' -> out.append("\\\\");
                case '\b' -> out.append("\\b");
                case '\f' -> out.append("\\f");
                case '\n' -> out.append("\\n");
                case '\r' -> out.append("\\r");
                case '\t' -> out.append("\\t");
                default -> {
                    if (c < 0x20) {
                        out.append(String.format("\\u%04x", (int) c));
                    } else {
                        out.append(c);
                    }
                }
            }
        }
        out.append('"');
    }

    static Map<String, String> parseArgs(String[] argv) {
        Map<String, String> a = new HashMap<>();
        for (int i = 0; i < argv.length; i++) {
            if (!argv[i].startsWith("--") || i + 1 >= argv.length) {
                throw new IllegalArgumentException("expected --name value pairs, got " + String.join(" ", argv));
            }
            a.put(argv[i].substring(2), argv[++i]);
        }
        return a;
    }

    static String require(Map<String, String> a, String name) {
        String v = a.get(name);
        if (v == null) {
            throw new IllegalArgumentException("--" + name + " is required");
        }
        return v;
    }
}
