FROM alpine
FOO bar baz
UNKNOWN
NOTACMD ["json", "here"]
FROM2 x
