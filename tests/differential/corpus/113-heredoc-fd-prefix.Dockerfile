FROM alpine
RUN 3<<EOF cat /dev/fd/3
fd three
EOF
RUN cat 0<<IN 12<<-OUT
in
IN
out
OUT
