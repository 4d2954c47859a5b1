import os
# notebooks read this to pick quick settings where a cell would otherwise train for minutes
os.environ.setdefault('MPLBACKEND', 'Agg')
