FROM alpine
ENV A="a\"b" B='a\'b C=\$HOME D="$HOME" E=${X:-y}
ENV F="multi \
  line"
ENV G="unterminated
