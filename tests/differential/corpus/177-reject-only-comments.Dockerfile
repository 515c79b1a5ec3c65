# one
# two
   # three
