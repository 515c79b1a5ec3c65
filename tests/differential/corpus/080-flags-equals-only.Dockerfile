FROM alpine
RUN --= --=x --a= echo
