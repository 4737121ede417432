# tests/check-doc-cites.sh passes a tree whose comments cite existing doc/ files and sections,
# and fails, naming file and line, on a research note, a missing doc/ file, a missing section and
# a bare document name that is nowhere in the tree. (The bad citations are assembled by printf, so
# that this script does not carry them itself.)
mkdir -p t/doc/formats t/src
printf '# GPTQ\n\n## 2. Where the bits are\n' > t/doc/formats/gptq.md
printf '/* the bitstream rule (doc/formats/gptq.md §2; gptq.md) */\nint x;\n' > t/src/a.c
sh $SRC/tests/check-doc-cites.sh t
printf '# see %s/quant-formats.md §2.2\n' "research" > t/src/b.py
printf '/* doc/formats/awq.m''d §1 */\n' > t/src/c.h
printf '/* doc/formats/gptq.md §%s */\n' 7 > t/src/d.cl
printf '# DESIGN.m''d §3\n' > t/src/e.sh
sh $SRC/tests/check-doc-cites.sh t || echo "exit $?"
