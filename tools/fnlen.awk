# Functions longer than LIMIT lines (default 100) in Rust sources, test modules excluded:
#   awk -v LIMIT=100 -f tools/fnlen.awk $(find src -name '*.rs')
# A function runs from its `fn` line to the first later line that is a `}` at the `fn`
# line's indentation; a file's lines from `#[cfg(test)]` on are not read.
function flush(   i, j, ind, n) {
    for (i = 1; i <= nl; i++) {
        if (line[i] !~ /^ *(pub(\([^)]*\))? +)?(const +)?(async +)?(unsafe +)?fn +[A-Za-z0-9_]+/) continue
        if (line[i] ~ /; *$/) continue
        match(line[i], /^ */); ind = substr(line[i], 1, RLENGTH)
        for (j = i + 1; j <= nl; j++) if (line[j] == ind "}") break
        n = j - i + 1
        if (j <= nl && n > LIMIT) {
            name = line[i]; sub(/^.*fn +/, "", name); sub(/[^A-Za-z0-9_].*$/, "", name)
            printf "%d %s:%d %s\n", n, file, i, name
        }
    }
    nl = 0
}
BEGIN { if (LIMIT == "") LIMIT = 100 }
FNR == 1 { if (nl) flush(); file = FILENAME; intest = 0 }
/#\[cfg\(test\)\]/ { intest = 1 }
!intest { line[++nl] = $0 }
END { if (nl) flush() }
