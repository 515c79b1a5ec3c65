#  EsCaPe =`
# SynTax= x/y
FROM alpine
RUN a `
 b
