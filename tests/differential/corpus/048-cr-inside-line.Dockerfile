FROMalpine
RUN echo ab
ENV AB
LABEL a=bc=d
