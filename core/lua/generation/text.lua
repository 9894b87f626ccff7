-- Text: the one rule every text a client sends must pass, and the repair of
-- text on its way out.  Plain Lua with no dependencies: the server loads it
-- as require "generation.text" and generations as GEN_MODULE("text"), so a request
-- body, a preview and `o2c run --answers` all apply the same rule.
--
-- Text is valid UTF-8 by Lua 5.4's strict utf8.len (no overlong forms, no
-- surrogates D800-DFFF, nothing past U+10FFFF) and holds no NUL.  NUL is
-- refused in every field, notes and text answers included, rather than
-- kept: PostgreSQL's text and jsonb cannot store U+0000, XML (HTML export,
-- docx, xlsx) cannot carry it, C strings end at it (which is how notes used
-- to lose everything after one), and nobody types it.
local text = {}

local REPLACEMENT = "\u{FFFD}"

-- nil when S is text; otherwise what is wrong with it and what to do, for a
-- message that starts with the field's name.
function text.problem(s)
  local n, bad = utf8.len(s)
  if not n then
    return string.format("contains invalid UTF-8 at byte %d; send UTF-8 text", bad)
  end
  local nul = s:find("\0", 1, true)
  if nul then
    return string.format("contains a NUL character (U+0000) at byte %d; remove it, "
      .. "NUL is not allowed in text", nul)
  end
  return nil
end

-- S with each byte that does not begin a valid UTF-8 character replaced by
-- U+FFFD; S itself when it is valid (the usual case costs one utf8.len).
function text.repair(s)
  if utf8.len(s) then
    return s
  end
  local parts, pos = {}, 1
  while true do
    local n, bad = utf8.len(s, pos)
    if n then
      break
    end
    parts[#parts + 1] = s:sub(pos, bad - 1)
    parts[#parts + 1] = REPLACEMENT
    pos = bad + 1
  end
  parts[#parts + 1] = s:sub(pos)
  return table.concat(parts)
end

-- S as text that must be kept although it did not come from a client (a
-- model's reply, a draft quoting old rows): invalid bytes and NUL become
-- U+FFFD, visibly, instead of the store refusing it.
function text.clean(s)
  return (text.repair(s):gsub("%z", REPLACEMENT))
end

-- The longest prefix of S of at most MAX bytes that does not cut a UTF-8
-- character in two.
function text.cut(s, max)
  if #s <= max then
    return s
  end
  local stop = max
  while stop > 0 and (s:byte(stop + 1) or 0) & 0xC0 == 0x80 do
    stop = stop - 1
  end
  return s:sub(1, stop)
end

return text
