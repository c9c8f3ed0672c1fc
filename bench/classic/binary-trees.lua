-- binary-trees: build perfect binary trees bottom-up and count their nodes,
-- many short-lived ones per depth plus one long-lived one (allocation and GC).
-- Usage: binary-trees.lua [N]   (N = maximum depth, at least 6)
local N = tonumber(arg and arg[1]) or 16
N = math.floor(N)

local format = string.format

-- A leaf is an empty table, an inner node holds its two children at [1] and [2].
local function make(depth)
  if depth == 0 then
    return {}
  end
  depth = depth - 1
  return { make(depth), make(depth) }
end

local function count(node)
  local left = node[1]
  if left == nil then
    return 1
  end
  return 1 + count(left) + count(node[2])
end

local MIN_DEPTH = 4
local maxDepth = N
if maxDepth < MIN_DEPTH + 2 then
  maxDepth = MIN_DEPTH + 2
end

local stretchDepth = maxDepth + 1
print(format("stretch tree of depth %d\t check: %d", stretchDepth, count(make(stretchDepth))))

local longLived = make(maxDepth)

for depth = MIN_DEPTH, maxDepth, 2 do
  -- 2^(maxDepth - depth + MIN_DEPTH) trees, kept an integer on every engine
  local trees = 1
  for _ = 1, maxDepth - depth + MIN_DEPTH do
    trees = trees * 2
  end
  local total = 0
  for _ = 1, trees do
    total = total + count(make(depth))
  end
  print(format("%d\t trees of depth %d\t check: %d", trees, depth, total))
end

print(format("long lived tree of depth %d\t check: %d", maxDepth, count(longLived)))
