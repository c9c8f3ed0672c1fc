-- fannkuch-redux: for every permutation of 1..N, count the prefix reversals
-- ("pancake flips") until 1 is in front; print a checksum (flips added for
-- even-numbered permutations, subtracted for odd ones) and the most flips.
-- Usage: fannkuch-redux.lua [N]
local N = tonumber(arg and arg[1]) or 10
N = math.floor(N)

local format = string.format

local function fannkuch(n)
  local perm, current, count = {}, {}, {}
  for i = 1, n do
    current[i] = i
    perm[i] = i
    count[i] = 0
  end

  local checksum, maxFlips = 0, 0
  local even = true -- parity of the permutation's index
  local r = n

  while true do
    while r ~= 1 do
      count[r] = r
      r = r - 1
    end

    -- flips of the current permutation
    local first = current[1]
    if first ~= 1 then
      -- perm[1] is never stored: it is always k, and k is kept in a local
      for i = 2, n do
        perm[i] = current[i]
      end
      local flips = 0
      local k = first
      repeat
        -- reverse perm[1..k]; perm[1] is k itself, which lands at position k
        local i, j = 2, k - 1
        while i < j do
          perm[i], perm[j] = perm[j], perm[i]
          i = i + 1
          j = j - 1
        end
        local nextK = perm[k]
        perm[k] = k
        k = nextK
        flips = flips + 1
      until k == 1
      if flips > maxFlips then
        maxFlips = flips
      end
      if even then
        checksum = checksum + flips
      else
        checksum = checksum - flips
      end
    end

    -- next permutation: rotate the first r+1 elements left until a count is left
    while true do
      if r == n then
        return checksum, maxFlips
      end
      local head = current[1]
      for i = 1, r do
        current[i] = current[i + 1]
      end
      current[r + 1] = head
      local c = count[r + 1] - 1
      count[r + 1] = c
      if c > 0 then
        break
      end
      r = r + 1
    end
    even = not even
  end
end

local checksum, maxFlips = fannkuch(N)
print(format("%d", checksum))
print(format("Pfannkuchen(%d) = %d", N, maxFlips))
