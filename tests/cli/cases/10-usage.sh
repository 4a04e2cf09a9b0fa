# Usage errors: one line naming the problem, the hint, exit 2, nothing on stdout.

usage_case() {
	# usage_case NAME 'ARGS' 'MESSAGE'
	printf 'tally: %s\nTry '\''tally --help'\''.\n' "$3" | expect_err
	check "$1" 2 "\$T $2 </dev/null"
}

usage_case unknown-long     '--foo'              "unrecognized option '--foo'"
usage_case unknown-long-arg '--foo=bar'          "unrecognized option '--foo=bar'"
usage_case unknown-short    '-x'                 "invalid option -- 'x'"
usage_case unknown-bundled  '-sx'                "invalid option -- 'x'"
usage_case ambiguous        '--s'                "option '--s' is ambiguous"
usage_case no-arg-allowed   '--stats=yes'        "option '--stats' doesn't allow an argument"
usage_case missing-long     '--top'              "option '--top' requires an argument"
usage_case missing-short    '-n'                 "option requires an argument -- 'n'"
usage_case missing-bundled  '-sj'                "option requires an argument -- 'j'"
usage_case top-abc          '--top abc'          "invalid number for --top: 'abc'"
usage_case top-negative     '-n -1'              "invalid number for --top: '-1'"
usage_case top-plus         '--top=+3'           "invalid number for --top: '+3'"
usage_case top-empty        "--top ''"           "invalid number for --top: ''"
usage_case top-overflow     '--top 18446744073709551616' "invalid number for --top: '18446744073709551616'"
usage_case ngram-zero       '--ngram 0'          "invalid number for --ngram: '0'"
usage_case ngram-abc        '--ngram=two'        "invalid number for --ngram: 'two'"
usage_case min-count-abc    '--min-count 1e3'    "invalid number for --min-count: '1e3'"
usage_case min-length-abc   '--min-length x'     "invalid number for --min-length: 'x'"
usage_case max-length-zero  '--max-length 0'     "invalid number for --max-length: '0'"
usage_case length-order     '--min-length 5 --max-length 3' "--min-length is greater than --max-length"
usage_case threads-abc      '-j x'               "invalid number for --threads: 'x'"
usage_case threads-huge     '--threads 1025'     "invalid number for --threads: '1025'"
usage_case memory-bad       '--memory 12Q'       "invalid size for --memory: '12Q'"
usage_case memory-short     '-m12Q'              "invalid size for --memory: '12Q'"
usage_case memory-zero      '-m 0'               "invalid size for --memory: '0'"
usage_case memory-overflow  '-m 99999999999T'    "invalid size for --memory: '99999999999T'"
usage_case chunk-bad        '--chunk-size 1X'    "invalid size for --chunk-size: '1X'"
usage_case chunk-zero       '--chunk-size 0'     "invalid size for --chunk-size: '0'"
usage_case report-dash       '--report -'         "invalid value for --report: '-' (a file name, such as /dev/stdout, is needed)"
usage_case field-twice      '-f 1 -f 3'          "only one --field list may be given (as in -f 1,3)"
usage_case chunk-huge       '--chunk-size 1T'    "--chunk-size is too large (at most 1 GiB)"
usage_case ngram-huge       '--ngram 4097'       "--ngram is too large (at most 4096)"
usage_case keybytes-bad     '--max-key-bytes -1' "invalid size for --max-key-bytes: '-1'"
usage_case keybytes-huge    '--max-key-bytes 4194297K' "--max-key-bytes is too large (at most 4 GiB - 8 KiB)"
check keybytes-largest 0 '$T --max-key-bytes 4194296K </dev/null'
usage_case format-bad       '--format xml'       "invalid value for --format: 'xml'"
usage_case format-abbrev    '--form=xml'         "invalid value for --format: 'xml'"
usage_case sort-bad         '--sort=count,key'   "invalid value for --sort: 'count,key'"
usage_case split-bad        '--split=words'      "invalid value for --split: 'words'"
usage_case case-bad         '--case=upper'       "invalid value for --case: 'upper'"
usage_case io-bad           '--io=direct'        "invalid value for --io: 'direct'"
usage_case delim-long       "-f 1 -d ab"         "invalid value for --delimiter: 'ab' (one byte expected)"
usage_case delim-empty      "-f 1 -d ''"         "invalid value for --delimiter: '' (one byte expected)"
usage_case delim-newline    "-f 1 -d '
'"         "invalid value for --delimiter: a newline ends records"
usage_case delim-csv-quote  "--csv -f 1 -d '\"'"  "invalid value for --delimiter with --csv: '\"' quotes fields"
usage_case delim-no-field   "-d ,"               "--delimiter applies to --field only"
usage_case csv-no-field     '--csv'              "--csv applies to --field only"
usage_case header-no-field  '-l --header'        "--header applies to --field only"
usage_case split-lines      '-l --split=space'   "--split applies to --words and --ngram only"
usage_case split-field      '--split=unicode -f 1' "--split applies to --words and --ngram only"
usage_case modes-lw         '-l -w'              "--lines and --words cannot be used together"
usage_case modes-fl         '-f 1 --lines'       "--field and --lines cannot be used together"
usage_case modes-ngram      '-w --ngram 2'       "--words and --ngram cannot be used together"
usage_case modes-bundle     '-lw'                "--lines and --words cannot be used together"
usage_case files0-operand   '--files0-from list a' "extra operand 'a': file operands cannot be combined with --files0-from"
usage_case output-empty     "-o ''"              "invalid value for --output: ''"
usage_case stats-json-empty "--stats-json ''"    "invalid value for --stats-json: ''"
# A control character in an argument is shown escaped: the message stays one line.
usage_case field-newline    "-f '1
2'"                                              "invalid field list '1\\n2'"
usage_case format-controls  "--format \"\$(printf 'x\\r\\001')\""   "invalid value for --format: 'x\\r\\x01'"
# Two outputs that would replace one another; a device takes both.
usage_case same-output-stats  '-o o.tsv --stats-json ./o.tsv' "--output and --stats-json name the same file: './o.tsv'"
usage_case same-output-report '-o ./o.svg --report o.svg'      "--output and --report name the same file: 'o.svg'"
usage_case same-stats-report  '--stats-json s --report s'     "--stats-json and --report name the same file: 's'"
check same-device-allowed 0 'printf "a\n" | $T -o /dev/null --stats-json /dev/null --report /dev/null'

# Field lists the engine rejects are usage errors too (the message is the
# engine's: here only its shape is checked).
expect_out <<'EOF'
tally: Try 'tally --help'.
2
EOF
check field-list-zero 2 '$T -f 0 </dev/null 2>err; st=$?; head -c 7 err; tail -n 1 err; wc -l < err; exit $st'
expect_out <<'EOF'
tally: Try 'tally --help'.
2
EOF
check field-list-reversed 2 '$T -f 3-1 </dev/null 2>err; st=$?; head -c 7 err; tail -n 1 err; wc -l < err; exit $st'

# The same mode twice is fine.
expect_out <<'EOF'
a	2
EOF
check modes-same-twice 0 'printf "a A\n" | $T -w --words'

# --help: everything on stdout, exit 0; every long option is listed, and
# nothing this version lacks.
expect_out <<'EOF'
Usage: tally [OPTION]... [FILE]...
2
EOF
check help 0 '$T --help > h; head -n 1 h; for o in words ngram lines field delimiter csv header split case min-length max-length stopwords min-count max-key-bytes sort top format output files0-from threads memory tmpdir io chunk-size shard stats stats-json progress no-progress report help version; do grep -q -e "--$o\b" h || echo "missing --$o"; done; grep -c "tally merge" h'
expect_err <<'EOF'
tally: write error: No space left on device
EOF
check help-devfull 1 '$T --help > /dev/full'
expect_out <<'EOF'
tally 0.1.0
1
EOF
check version 0 '$T --version > v; head -n 1 v; sed -n 2p v | grep -c "zstd.*xxHash.*utf8proc"; [ $(wc -l < v) -eq 2 ]'

# The man page formats without a warning.
requires groff
check man-page 0 'groff -ww -man -z "$HERE/../../man/tally.1" 2>&1'
