# mexport_add_plugin(<target> <source>...): a mexport plugin built out of tree
# against the installed SDK. The result is lib<target>.so, a module linked to
# the one framework library (so torch, protobuf and onnx exist once per
# process), with hidden symbols except the MEXPORT_PLUGIN entry point.
# `cmake --install` puts it in lib/mexport/plugins under the project's install
# prefix; use mexport's own prefix to have mexport find it without
# --plugin-dir.
function(mexport_add_plugin target)
  add_library(${target} MODULE ${ARGN})
  target_link_libraries(${target} PRIVATE mexport::framework)
  set_target_properties(${target} PROPERTIES PREFIX "lib" CXX_VISIBILITY_PRESET hidden
                                             CXX_STANDARD 17 CXX_STANDARD_REQUIRED ON)
  install(TARGETS ${target} LIBRARY DESTINATION lib/mexport/plugins)
endfunction()
