-- mandelbrot: the N x N bitmap of the Mandelbrot set over [-1.5, 0.5] x [-1, 1]
-- (50 iterations, escape radius 2). Instead of writing the PBM bitmap it prints
-- the number of points in the set and a checksum of the bitmap's bytes (eight
-- pixels a byte, first pixel in the high bit, rows padded to whole bytes),
-- computed without bit operations.
-- Usage: mandelbrot.lua [N]
local N = tonumber(arg and arg[1]) or 1000
N = math.floor(N)

local format = string.format

local ITERATIONS = 50
local LIMIT2 = 4.0 -- escape radius squared
local MOD = 1000000007

local inside, bytes, byteSum, hash = 0, 0, 0, 0

for y = 0, N - 1 do
  local ci = 2.0 * y / N - 1.0
  local byte, bits = 0, 0
  for x = 0, N - 1 do
    local cr = 2.0 * x / N - 1.5
    local zr, zi, tr, ti = 0.0, 0.0, 0.0, 0.0
    local i = 0
    while i < ITERATIONS and tr + ti <= LIMIT2 do
      zi = 2.0 * zr * zi + ci
      zr = tr - ti + cr
      tr = zr * zr
      ti = zi * zi
      i = i + 1
    end
    byte = byte + byte
    if tr + ti <= LIMIT2 then
      byte = byte + 1
      inside = inside + 1
    end
    bits = bits + 1
    if bits == 8 then
      bytes = bytes + 1
      byteSum = byteSum + byte
      hash = (hash * 31 + byte) % MOD
      byte, bits = 0, 0
    end
  end
  if bits > 0 then
    -- pad the row's last byte: shift the pixels up to the high bits
    while bits < 8 do
      byte = byte + byte
      bits = bits + 1
    end
    bytes = bytes + 1
    byteSum = byteSum + byte
    hash = (hash * 31 + byte) % MOD
  end
end

print(format("mandelbrot %dx%d: %d points in the set", N, N, inside))
print(format("bitmap: %d bytes, byte sum %d, hash %d", bytes, byteSum, hash))
