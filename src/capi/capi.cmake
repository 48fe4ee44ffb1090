# The C API's addition, included by src/CMakeLists.txt after anetrain_shared is defined: its
# sources compiled once (anetrain_capi_objects: position-independent, as everything here is) for
# both libanetrain.so and libanetrain.a, MIL programs on a named backend among them.
if(TARGET anetrain_backend_ane)
  set(CAPI_MIL_SOURCE ${CMAKE_CURRENT_LIST_DIR}/mil_c.cpp)
  target_link_libraries(anetrain_shared PRIVATE anetrain_mil anetrain_backend_ane)
else()
  set(CAPI_MIL_SOURCE ${CMAKE_CURRENT_LIST_DIR}/mil_absent.cpp)  # each call: not built
endif()
add_library(anetrain_capi_objects OBJECT ${CMAKE_CURRENT_LIST_DIR}/anetrain_c.cpp ${CMAKE_CURRENT_LIST_DIR}/grad_c.cpp
  ${CMAKE_CURRENT_LIST_DIR}/trainer_c.cpp ${CAPI_MIL_SOURCE})
target_include_directories(anetrain_capi_objects PUBLIC ${PROJECT_SOURCE_DIR}/include)
# Their include paths and definitions.
target_link_libraries(anetrain_capi_objects PRIVATE ${ANETRAIN_ENGINE_LIBRARIES})
target_sources(anetrain_shared PRIVATE $<TARGET_OBJECTS:anetrain_capi_objects>)

# libanetrain.a: one archive holding the engine's libraries (ANETRAIN_ENGINE_LIBRARIES) and the
# C API, so a C program links one file plus system libraries (docs/api.md gives the line). Merged
# by an `ar -M` script (libtool -static on macOS), because CMake cannot build one archive out of
# others. Skipped in the fuzz build: nothing there links it.
if(NOT ANETRAIN_FUZZ)
  set(ANETRAIN_STATIC ${CMAKE_CURRENT_BINARY_DIR}/libanetrain.a)
  set(ENGINE_ARCHIVES "")
  set(MRI_ADDLIBS "")
  foreach(lib ${ANETRAIN_ENGINE_LIBRARIES})
    list(APPEND ENGINE_ARCHIVES $<TARGET_FILE:${lib}>)
    string(APPEND MRI_ADDLIBS "ADDLIB $<TARGET_FILE:${lib}>\n")
  endforeach()
  if(APPLE)
    add_custom_command(OUTPUT ${ANETRAIN_STATIC}
      COMMAND ${CMAKE_COMMAND} -E rm -f ${ANETRAIN_STATIC}
      COMMAND libtool -static -o ${ANETRAIN_STATIC} ${ENGINE_ARCHIVES} $<TARGET_OBJECTS:anetrain_capi_objects>
      DEPENDS ${ANETRAIN_ENGINE_LIBRARIES} $<TARGET_OBJECTS:anetrain_capi_objects>
      COMMAND_EXPAND_LISTS VERBATIM)
  else()
    # The script is written at generate time; the archives it names are built before it runs.
    set(MRI ${CMAKE_CURRENT_BINARY_DIR}/anetrain_static.mri)
    file(GENERATE OUTPUT ${MRI} CONTENT
"CREATE ${ANETRAIN_STATIC}.new
${MRI_ADDLIBS}ADDMOD $<JOIN:$<TARGET_OBJECTS:anetrain_capi_objects>,
ADDMOD >
SAVE
END
")
    # Written under another name and renamed, so an interrupted merge never leaves a half archive.
    add_custom_command(OUTPUT ${ANETRAIN_STATIC}
      COMMAND ${CMAKE_COMMAND} -E rm -f ${ANETRAIN_STATIC}.new
      COMMAND ${CMAKE_AR} -M < ${MRI}
      COMMAND ${CMAKE_RANLIB} ${ANETRAIN_STATIC}.new
      COMMAND ${CMAKE_COMMAND} -E rename ${ANETRAIN_STATIC}.new ${ANETRAIN_STATIC}
      DEPENDS ${ANETRAIN_ENGINE_LIBRARIES} $<TARGET_OBJECTS:anetrain_capi_objects> ${MRI}
      COMMENT "Merging the engine and the C API into libanetrain.a")
  endif()
  add_custom_target(anetrain_static ALL DEPENDS ${ANETRAIN_STATIC})
  # Object files in DEPENDS are file-level only; the object library must also be built first.
  add_dependencies(anetrain_static anetrain_capi_objects)
  set_target_properties(anetrain_static PROPERTIES ANETRAIN_ARCHIVE ${ANETRAIN_STATIC})
endif()
