-- Problems: where a thing was written (file:line) and the list of errors a build
-- collects. Lua's `debug` library is absent in the sandbox, so positions come from
-- the one place the VM still hands them out: the "file:line:" prefix that
-- error(msg, level) adds for an active call frame.
local text = GEN_MODULE("text")

local problems = {}

-- "file:line: text" -> file, line, text. Anything else -> nil, nil, message.
function problems.split(message)
  if type(message) ~= "string" then
    return nil, nil, tostring(message)
  end
  local file, line, text = message:match("^(.-):(%d+): (.*)$")
  if not file or file:find("\n", 1, true) then
    return nil, nil, message
  end
  return file, math.tointeger(tonumber(line)), text
end

-- The file and line of a running function: level 1 is the function that calls
-- here(), level 2 its caller, and so on. Must not be called as a tail call (a
-- tail call removes the frame whose position we want).
function problems.here(level)
  local _, where = pcall(error, "", level + 2)
  local file, line = problems.split(where)
  return file, line
end

-- A collector of {file=, line=, message=} records.
local Collector = {}
Collector.__index = Collector

function problems.collector()
  return setmetatable({ list = {} }, Collector)
end

-- add(file, line, format, ...): the message says what is wrong and how to fix it.
function Collector:add(file, line, fmt, ...)
  local message = select("#", ...) > 0 and string.format(fmt, ...) or fmt
  self.list[#self.list + 1] = { file = file, line = line, message = message }
end

-- Adds an error message raised by Lua ("file:line: text"), defaulting to the
-- given file when the message carries no position.
function Collector:add_raised(default_file, message)
  if type(message) == "table" and message.message then
    self.list[#self.list + 1] = {
      file = message.file or default_file, line = message.line, message = message.message,
    }
    return
  end
  local file, line, text = problems.split(message)
  self.list[#self.list + 1] = { file = file or default_file, line = line, message = text }
end

function Collector:empty()
  return #self.list == 0
end

function Collector:count()
  return #self.list
end

-- A short description of a value for messages: "3x" quoted, tables as "a table".
function problems.show(value)
  local kind = type(value)
  if kind == "string" then
    -- Quoted into messages that are sent as JSON: never cut a character in
    -- two, never pass invalid UTF-8 on.
    if #value > 40 then
      value = text.cut(value, 37) .. "..."
    end
    return string.format("%q", text.repair(value))
  elseif math.type(value) == "float" and value == math.floor(value) and math.abs(value) < 2 ^ 53 then
    return string.format("%d", value) -- 9.0 from a JSON decoder reads as 9
  elseif kind == "number" or kind == "boolean" or kind == "nil" then
    return tostring(value)
  end
  return "a " .. kind
end

-- "file:line: message" for printing.
function problems.format(p)
  if p.line then
    return string.format("%s:%d: %s", p.file or "?", p.line, p.message)
  end
  return string.format("%s: %s", p.file or "?", p.message)
end

return problems
