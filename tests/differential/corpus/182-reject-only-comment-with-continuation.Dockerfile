# comment \
# another \
