-- spectral-norm: the spectral norm of the infinite matrix
-- A(i, j) = 1 / ((i + j) * (i + j + 1) / 2 + i + 1) (0-based i, j), cut to N x N,
-- by 10 rounds of the power method on A^T A; printed with 9 decimals.
-- Usage: spectral-norm.lua [N]
local N = tonumber(arg and arg[1]) or 500
N = math.floor(N)

local sqrt = math.sqrt
local format = string.format

-- A with 1-based i, j
local function A(i, j)
  local ij = i + j - 1
  return 1.0 / (ij * (ij - 1) * 0.5 + i)
end

-- y = A x
local function mulAv(n, x, y)
  for i = 1, n do
    local sum = 0.0
    for j = 1, n do
      sum = sum + A(i, j) * x[j]
    end
    y[i] = sum
  end
end

-- y = A^T x
local function mulAtv(n, x, y)
  for i = 1, n do
    local sum = 0.0
    for j = 1, n do
      sum = sum + A(j, i) * x[j]
    end
    y[i] = sum
  end
end

-- y = A^T A x, t is scratch
local function mulAtAv(n, x, y, t)
  mulAv(n, x, t)
  mulAtv(n, t, y)
end

local u, v, t = {}, {}, {}
for i = 1, N do
  u[i] = 1.0
  v[i] = 0.0
  t[i] = 0.0
end

for _ = 1, 10 do
  mulAtAv(N, u, v, t)
  mulAtAv(N, v, u, t)
end

local vBv, vv = 0.0, 0.0
for i = 1, N do
  local vi = v[i]
  vBv = vBv + u[i] * vi
  vv = vv + vi * vi
end

print(format("%.9f", sqrt(vBv / vv)))
