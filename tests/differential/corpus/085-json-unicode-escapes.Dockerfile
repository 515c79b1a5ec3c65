FROM alpine
CMD ["\u00e9t\u00e9", "\u0041\u0042", "\ud83d\ude00", "\u65e5\u672c"]
RUN ["a\/b", "tab\there", "nl\nx", "q\"q", "bs\\bs", "\b\f\r"]
