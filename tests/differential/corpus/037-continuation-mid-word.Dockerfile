FROM alp\
ine
RUN ec\
ho hel\
  lo
