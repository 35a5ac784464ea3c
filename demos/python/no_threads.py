"""No threads at all: under threadlab py it should run as fast as under plain python3."""
total = sum(i * i for i in range(1_000_000))
print("sum of squares:", total)
